"""Checks on what a caller asks for, shared by the CLI and Python callers of `Machines`.

Every value that ends up in a unit file, daemon.json or a shell on the host is
checked here before anything is created: one clear UsageError naming the option.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .errors import UsageError
from .layout import DEFAULT_CERT_DAYS, DEFAULT_TLS_KEY_TYPE
from .model import EngineOptions

INSTALL_STRATEGIES = ("script", "package", "bundle", "none")
TLS_KEY_TYPES = ("ecdsa", "rsa2048", "rsa4096")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CERT_DAYS = 36500


@dataclass
class TLSOptions:
    key_type: str = DEFAULT_TLS_KEY_TYPE
    cert_days: int = DEFAULT_CERT_DAYS
    sans: list = field(default_factory=list)
    ca_cert: str | None = None       # bring-your-own CA (docker-machine's --tls-ca-cert …)
    ca_key: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


def _one_line(flag: str, value: str) -> str:
    value = str(value)
    if any(c in value for c in "\n\r\0"):
        raise UsageError(f"invalid {flag} {value!r}: it contains a line break or NUL",
                         "give each value on one line")
    return value


def _key_value(flag: str, item: str, *, env_key: bool = False) -> str:
    item = _one_line(flag, item)
    key, sep, _ = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"invalid {flag} {item!r}", "write it as KEY=VALUE")
    if env_key and not ENV_KEY_RE.match(key):
        raise UsageError(f"invalid {flag} {item!r}: {key!r} is not a variable name",
                         "use letters, digits and '_', not starting with a digit")
    return item


def label(flag: str, item: str) -> str:
    """A KEY=VALUE label on one line."""
    return _key_value(flag, item)


def port(flag: str, value, *, allow_zero: bool = False) -> int:
    """A TCP port number, checked (never wrapped modulo 65536)."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        p = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {flag} {value!r}", "give a port number between 1 and 65535") from None
    if not (0 if allow_zero else 1) <= p <= 65535:
        raise UsageError(f"invalid {flag} {p}", "give a port number between 1 and 65535")
    return p


def seconds(flag: str, value, *, low: float = 0.0, high: float = 86400.0) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {flag} {value!r}", "give a number of seconds") from None
    if not math.isfinite(s) or not low <= s <= high:
        raise UsageError(f"invalid {flag} {value!r}", f"give a number of seconds between {low:g} and {high:g}")
    return s


def engine_options(e: EngineOptions) -> EngineOptions:
    """Normalise and check engine options in place; return them."""
    install = (e.install or "").lower()
    if install and install not in INSTALL_STRATEGIES:
        raise UsageError(f"invalid --engine-install {e.install!r}", "use one of: " + ", ".join(INSTALL_STRATEGIES))
    if e.bundle:
        if install not in ("", "bundle"):
            raise UsageError(f"--engine-bundle goes with --engine-install=bundle, not {install}",
                             "drop --engine-bundle or --engine-install")
        install = "bundle"
    elif install == "bundle":
        raise UsageError("--engine-install=bundle needs a bundle", "pass --engine-bundle PATH (see machine bundle build)")
    e.install = install or "script"
    for item in e.labels:
        _key_value("--engine-label", item)
    for item in e.env:
        _key_value("--engine-env", item, env_key=True)
    for item in e.arbitrary_flags:
        _one_line("--engine-opt", item)
        if not str(item).lstrip("-").split("=", 1)[0]:
            raise UsageError(f"invalid --engine-opt {item!r}", "write it as dockerd's flag name, e.g. log-level=debug")
    for flag, items in (("--engine-insecure-registry", e.insecure_registry),
                        ("--engine-registry-mirror", e.registry_mirror)):
        for item in items:
            _one_line(flag, item)
            if not str(item).strip() or any(c.isspace() for c in str(item)):
                raise UsageError(f"invalid {flag} {item!r}", "give a host[:port] or URL without spaces")
    _one_line("--engine-storage-driver", e.storage_driver)
    if e.storage_driver and not re.match(r"^[a-z0-9][a-z0-9_.-]*$", e.storage_driver):
        raise UsageError(f"invalid --engine-storage-driver {e.storage_driver!r}", "e.g. overlay2")
    if e.port:
        e.port = port("--engine-port", e.port)
    if e.install == "script":
        url = urlparse(_one_line("--engine-install-url", e.install_url))
        if url.scheme not in ("http", "https", "file") or not (url.netloc or url.path):
            raise UsageError(f"invalid --engine-install-url {e.install_url!r}", "give an http(s) URL")
    return e


def tls_options(t: TLSOptions) -> TLSOptions:
    if t.key_type not in TLS_KEY_TYPES:
        raise UsageError(f"invalid --tls-key-type {t.key_type!r}", "use one of: " + ", ".join(TLS_KEY_TYPES))
    try:
        days = int(t.cert_days)
    except (TypeError, ValueError):
        raise UsageError(f"invalid --tls-cert-days {t.cert_days!r}", "give a number of days") from None
    if not 1 <= days <= MAX_CERT_DAYS:
        raise UsageError(f"invalid --tls-cert-days {days}", f"give between 1 and {MAX_CERT_DAYS} days")
    t.cert_days = days
    for san in t.sans:
        _one_line("--tls-san", san)
        if not san.strip() or any(c.isspace() or c in ",/" for c in san):
            raise UsageError(f"invalid --tls-san {san!r}", "give one host name or IP address")
    if bool(t.ca_cert) != bool(t.ca_key):
        raise UsageError("--tls-ca-cert and --tls-ca-key go together", "pass both or neither")
    if bool(t.client_cert) != bool(t.client_key):
        raise UsageError("--tls-client-cert and --tls-client-key go together", "pass both or neither")
    return t
