"""What both emulators share: a threaded HTTP(S) server on 127.0.0.1, routing, JSON replies,
a log of API calls, and fault injection.

Faults are the test's way to make "call number N of a create" fail the way the real
service fails: `fail_call(n, status, body)` answers the n-th API call from now (token
requests are not counted) with that status and body, and does nothing else.
"""
from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit


class Reply(Exception):
    """Raised by a route to answer with this status, JSON body and headers."""

    def __init__(self, status: int, body: Any = None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, dict(headers or {})


@dataclass
class Fault:
    at: int                          # index of the API call (0-based, counted from when it was set)
    status: int
    body: Any
    headers: dict = field(default_factory=dict)
    match: Callable[[str, str], bool] | None = None   # (method, path) -> applies
    delay: float = 0.0               # seconds to sleep before answering (SIGINT windows)


@dataclass
class Call:
    method: str
    path: str
    query: dict
    body: Any
    status: int = 0


class Emulator:
    """Subclasses set `routes`: [(METHOD, regex, handler)], handler(req, match) -> (status, body[, headers])."""

    routes: list = []
    name = "emulator"

    def __init__(self, *, tls: tuple[str, str] | None = None):
        self._tls = tls
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self._fault_base = 0
        self.delays: list[tuple[Callable[[str, str], bool], float]] = []
        #: called with (method, path) before each API call is answered (tests use it to time SIGINT)
        self.on_call: Callable[[str, str], None] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._compiled = [(m, re.compile(rx, re.IGNORECASE), h) for m, rx, h in self.routes]

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> "Emulator":
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _any(self):
                emu._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self._tls)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"{self.name}-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    # ---- faults -------------------------------------------------------------------------
    def fail_call(self, n: int, status: int, body: Any, *, headers: dict | None = None,
                  match: Callable[[str, str], bool] | None = None, delay: float = 0.0) -> None:
        """Answer the n-th API call from now (0-based; with `match`, the n-th matching one)."""
        with self.lock:
            self._fault_base = len(self.calls)
            self.faults.append(Fault(at=n, status=status, body=body, headers=headers or {}, match=match,
                                     delay=delay))

    def slow(self, match: Callable[[str, str], bool], seconds: float) -> None:
        """Answer matching calls late (after doing what they ask): a window for Ctrl-C."""
        self.delays.append((match, seconds))

    def api_calls(self, *, mutating: bool = False) -> list[Call]:
        with self.lock:
            calls = list(self.calls)
        return [c for c in calls if not mutating or c.method in ("PUT", "POST", "DELETE", "PATCH")]

    # ---- dispatch -----------------------------------------------------------------------
    def is_token_request(self, method: str, path: str) -> bool:
        return False

    def authenticate(self, handler, method: str, path: str) -> None:
        """Raise Reply(401, …) when the request's credentials are not good."""

    def advance(self) -> None:
        """Move long-running operations on (called before every request)."""

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        ctype = h.headers.get("Content-Type", "")
        if raw and "json" in ctype:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        elif raw and "x-www-form-urlencoded" in ctype:
            body = dict(parse_qsl(raw.decode()))
        else:
            body = raw or None
        method = h.command
        status, out, headers = 500, None, {}
        token = self.is_token_request(method, path)
        fault: Fault | None = None
        call = None
        with self.lock:
            self.advance()
            if not token:
                call = Call(method, path, query, body)
                index = len(self.calls) - self._fault_base
                self.calls.append(call)
                for f in list(self.faults):
                    if f.match is not None:
                        if f.match(method, path):
                            if f.at == 0:
                                fault = f
                                self.faults.remove(f)
                                break
                            f.at -= 1
                    elif f.at == index:
                        fault = f
                        self.faults.remove(f)
                        break
        if call is not None and self.on_call:
            self.on_call(method, path)
        try:
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                raise Reply(fault.status, fault.body, fault.headers)
            if not token:
                self.authenticate(h, method, path)
            for m, rx, handler in self._compiled:
                if m != method and not (m == "GET" and method == "HEAD"):
                    continue
                mt = rx.fullmatch(path)
                if mt:
                    with self.lock:
                        result = handler(self, Request(method, path, query, body, h.headers), mt)
                    status, out = result[0], result[1]
                    headers = result[2] if len(result) > 2 else {}
                    break
            else:
                raise self.no_route(method, path)
        except Reply as r:
            status, out, headers = r.status, r.body, r.headers
        if call is not None:
            call.status = status
        for match, seconds in self.delays:
            if match(method, path):
                time.sleep(seconds)   # done, but the answer is late: the window a Ctrl-C falls into
        data = b"" if out is None else (out if isinstance(out, bytes) else json.dumps(out).encode())
        try:
            h.send_response(status)
            if data:
                h.send_header("Content-Type", headers.pop("Content-Type", "application/json; charset=utf-8"))
            for k, v in headers.items():
                h.send_header(k, str(v))
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if data and method != "HEAD":
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def no_route(self, method: str, path: str) -> Reply:
        return Reply(404, {"error": {"code": "NoRoute", "message": f"no route for {method} {path}"}})


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: Any
    headers: Any

    def json(self) -> dict:
        if isinstance(self.body, dict):
            return self.body
        if not self.body:
            return {}
        return json.loads(self.body)


class AddressPool:
    """Addresses handed out in order from a network (public IPs on loopback, private ones)."""

    def __init__(self, cidr: str, first: int = 4):
        self.net = ipaddress.ip_network(cidr, strict=False)
        self.first = first
        self.used: set[str] = set()

    def take(self, want: str | None = None) -> str:
        if want:
            if want in self.used:
                raise ValueError(f"{want} in use")
            self.used.add(want)
            return want
        for i, host in enumerate(self.net.hosts()):
            if i + 1 < self.first:
                continue
            a = str(host)
            if a not in self.used:
                self.used.add(a)
                return a
        raise ValueError("pool exhausted")

    def release(self, address: str | None) -> None:
        self.used.discard(address or "")


def make_test_ca(directory) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    import datetime as dt
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "machine emulator test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "cert.pem").write_bytes(cert.public_bytes(pem))
    (d / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem")
