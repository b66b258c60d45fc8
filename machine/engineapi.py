"""Talk to a Docker engine's HTTP API over mutual TLS with the stdlib only.

Used by `ls`, `env --check` and the provisioner's verify step; kept free of
cryptography, paramiko and requests so `ls` starts fast.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlparse

from .layout import DEFAULT_ENGINE_PORT

from .errors import MachineError
from .record import Record


class EngineInfo(Record):
    version: str
    api_version: str
    os: str
    arch: str


_contexts: dict[bytes, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """A client TLS context; shared between machines whose CA and client cert are the same
    files' contents (the usual case), so `ls` over hundreds of hosts builds it once."""
    with open(ca, "rb") as f1, open(cert, "rb") as f2, open(key, "rb") as f3:
        fingerprint = hashlib.sha256(f1.read() + b"\0" + f2.read() + b"\0" + f3.read()).digest()
    with _contexts_lock:
        ctx = _contexts.get(fingerprint)
        if ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
            ctx.load_cert_chain(cert, key)
            ctx.check_hostname = True
            _contexts[fingerprint] = ctx
        return ctx


def get_json(url: str, path: str, *, ca: str, cert: str, key: str, timeout: float = 5.0):
    parsed = urlparse(url)
    if parsed.scheme not in ("tcp", "https"):
        raise MachineError(f"unsupported engine URL {url!r}", "use tcp://HOST:PORT")
    host, port = parsed.hostname, parsed.port or DEFAULT_ENGINE_PORT
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls_context(ca, cert, key))
    try:
        conn.request("GET", path, headers={"Host": "docker"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise MachineError(f"engine at {url} answered {resp.status} for {path}")
        return json.loads(body)
    finally:
        conn.close()


def check_tls(url: str, *, ca: str, cert: str, key: str, timeout: float = 20.0) -> None:
    """A mutual-TLS handshake with the engine, nothing more (docker-machine's ValidateCertificate:
    what `config` does before printing, and what GitLab Runner relies on as a liveness check)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("tcp", "https"):
        return  # unix:// and ssh:// engines have no TLS to check
    host, port = parsed.hostname, parsed.port or DEFAULT_ENGINE_PORT
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with tls_context(ca, cert, key).wrap_socket(raw, server_hostname=host):
                pass
    except ssl.SSLCertVerificationError as e:
        raise MachineError(f"Error checking TLS connection: the engine at {url} presented a certificate that "
                           f"does not verify ({e.verify_message})", "run: machine regenerate-certs NAME") from None
    except (ssl.SSLError, OSError) as e:
        why = "timed out" if isinstance(e, (socket.timeout, TimeoutError)) else (
            getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e))
        raise MachineError(f"Error checking TLS connection: cannot reach the engine at {url} ({why})",
                           "is the machine running? machine status NAME") from None


def engine_info(url: str, *, ca: str, cert: str, key: str, timeout: float = 5.0) -> EngineInfo:
    """GET /version; raises MachineError with the real cause (refused, TLS, timeout)."""
    try:
        v = get_json(url, "/version", ca=ca, cert=cert, key=key, timeout=timeout)
    except MachineError:
        raise
    except ssl.SSLCertVerificationError as e:
        raise MachineError(f"engine at {url} presented a certificate that does not verify ({e.verify_message})",
                           "run: machine regenerate-certs NAME") from None
    except ssl.SSLError as e:
        raise MachineError(f"TLS with the engine at {url} failed ({e.reason or e})") from None
    except (socket.timeout, TimeoutError):
        raise MachineError(f"engine at {url} did not answer within {timeout:g}s") from None
    except ConnectionRefusedError:
        raise MachineError(f"engine at {url} refused the connection") from None
    except OSError as e:
        raise MachineError(f"cannot reach the engine at {url} ({e.strerror or e})") from None
    except ValueError as e:
        raise MachineError(f"engine at {url} sent an unreadable answer ({e})") from None
    return EngineInfo(version=str(v.get("Version", "")), api_version=str(v.get("ApiVersion", "")),
                      os=str(v.get("Os", "")), arch=str(v.get("Arch", "")))


def wait_for_engine(url: str, *, ca: str, cert: str, key: str, deadline_s: float = 60.0,
                    interval: float = 0.5) -> EngineInfo:
    """Poll /version until it answers or the deadline passes; report the last error."""
    end = time.monotonic() + deadline_s
    last: MachineError | None = None
    while True:
        try:
            return engine_info(url, ca=ca, cert=cert, key=key, timeout=min(5.0, max(0.5, end - time.monotonic())))
        except MachineError as e:
            last = e
        if time.monotonic() >= end:
            raise MachineError(f"engine not ready after {deadline_s:g}s: {last.message}", last.hint)
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
