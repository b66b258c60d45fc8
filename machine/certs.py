"""CA, server and client certificates for Docker's mutual TLS (cryptography).

Layout follows docker-machine: the store's certs/ folder holds the CA
(ca.pem, ca-key.pem) and the client pair the local docker CLI presents
(cert.pem, key.pem); each machine gets a server pair signed by that CA.

Private keys are written 0600 through fsutil.atomic_write, certificates 0644.
Every failure to read or match a file is a MachineError naming the file.

This module imports `cryptography` at module level, so keep it off the
`env` / `ls` / `config` import paths.
"""
from __future__ import annotations

import errno
import ipaddress
import math
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import MachineError
from .fsutil import (PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE, STALE_AFTER_S, atomic_write, ensure_dir, fsync_dir,
                     is_stale, read_small_file, remove_path, sweep_temp_files)

KEY_TYPES = ("ecdsa", "rsa2048", "rsa4096")  # ecdsa = P-256, the default

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CLIENT_CERT = "cert.pem"
CLIENT_KEY = "key.pem"

# Backdate not_before so a host whose clock lags a little still accepts the cert.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: datetime  # timezone-aware, UTC
    not_after: datetime  # timezone-aware, UTC
    sans: tuple[str, ...]
    fingerprint_sha256: str  # "AB:CD:..." like `openssl x509 -fingerprint -sha256`
    is_ca: bool

    @property
    def days_left(self) -> int:
        """Days until not_after, rounded up: a fresh 1095-day cert says 1095,
        one expiring within the day says 1; 0 or less once expired."""
        return math.ceil((self.not_after - _utcnow()).total_seconds() / 86400)

    @property
    def expired(self) -> bool:
        return _utcnow() >= self.not_after


# --------------------------------------------------------------------------- generation


def generate_ca(
    cert_path,
    key_path,
    *,
    org: str = "machine",
    key_type: str = "ecdsa",
    days: int = 3650,
    _now: datetime | None = None,
) -> None:
    """Create a self-signed CA: key at key_path (0600), certificate at cert_path."""
    _check_days(days)
    key = _new_key(key_type)
    now = _now or _utcnow()
    name = _name(org, f"{org} CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        _base_builder(name, name, key.public_key(), now, now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
    )
    cert = builder.sign(key, _hash_for(key))
    _write_pair(cert, key, cert_path, key_path)


def generate_client_cert(
    ca_cert_path,
    ca_key_path,
    cert_path,
    key_path,
    *,
    org: str = "machine",
    key_type: str = "ecdsa",
    days: int = 1095,
    _now: datetime | None = None,
) -> None:
    """Create the client pair the docker CLI presents (EKU clientAuth)."""
    _generate_leaf(
        ca_cert_path,
        ca_key_path,
        cert_path,
        key_path,
        subject=_name(org, f"{org} client"),
        ekus=[ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=None,
        key_type=key_type,
        days=days,
        now=_now,
    )


def generate_server_cert(
    ca_cert_path,
    ca_key_path,
    cert_path,
    key_path,
    *,
    common_name: str,
    sans: list[str],
    org: str = "machine",
    key_type: str = "ecdsa",
    days: int = 1095,
    _now: datetime | None = None,
) -> None:
    """Create a Docker engine's server pair.

    EKU serverAuth and clientAuth (swarm nodes present it as a client too).
    Each SAN entry that parses as an IPv4/IPv6 address becomes an IPAddress,
    anything else a DNSName; "localhost" and 127.0.0.1 are always added.
    """
    _generate_leaf(
        ca_cert_path,
        ca_key_path,
        cert_path,
        key_path,
        # X.509 caps CN at 64 characters; the SANs are what clients verify.
        subject=_name(org, (common_name or "machine")[:64]),
        ekus=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=_san_list(list(sans or []) + ["localhost", "127.0.0.1"]),
        key_type=key_type,
        days=days,
        now=_now,
    )


def ensure_ca_and_client(
    certs_dir,
    *,
    org: str = "machine",
    key_type: str = "ecdsa",
    ca_days: int = 3650,
    client_days: int = 1095,
) -> bool:
    """Create certs_dir/{ca.pem,ca-key.pem,cert.pem,key.pem} where missing.

    Returns True if anything was created. An existing CA is never replaced
    (every machine's server cert hangs off it); a missing client pair is
    re-issued from it. A new CA always gets a new client pair. Half a CA
    (only one of ca.pem / ca-key.pem) is an error rather than a silent new CA.
    Files that are there but garbled or do not belong together are reported
    with one line naming the file.

    Crash-safe: a new CA and its client pair are built in a temp folder
    (`.machine-certs-PID-RANDOM`) beside certs_dir and renamed into place in
    one step, so kill -9 at any moment leaves either no CA or a whole one.
    Stale temp folders and files of earlier, killed runs are swept first.
    The caller holds the store lock.
    """
    d = Path(certs_dir)
    sweep_stale(d)
    ca_cert, ca_key = d / CA_CERT, d / CA_KEY
    cl_cert, cl_key = d / CLIENT_CERT, d / CLIENT_KEY
    have_cert, have_key = os.path.lexists(ca_cert), os.path.lexists(ca_key)

    if have_cert != have_key:
        present, missing = (ca_cert, ca_key) if have_cert else (ca_key, ca_cert)
        raise MachineError(
            f"CA is incomplete: {missing} is missing but {present} exists",
            f"restore {missing.name}, or move {present} away to create a new CA "
            "(existing machines then need `machine regenerate-certs`)",
        )

    if not have_cert:
        _create_ca_dir(d, org=org, key_type=key_type, ca_days=ca_days, client_days=client_days)
        return True

    ca = _load_cert(ca_cert, what="CA certificate")
    ca_k = _load_key(ca_key, what="CA key")
    _check_pair(ca, ca_cert, ca_k, ca_key)
    if os.path.lexists(cl_cert) and os.path.lexists(cl_key):
        check_client_pair(d)
        return False
    # Re-issue the client pair: drop the lone cert first, so that "cert.pem exists"
    # always means the key written before it belongs to it (a kill between the two
    # writes leaves a key without a cert, which the next run re-issues).
    _unlink(cl_cert)
    generate_client_cert(ca_cert, ca_key, cl_cert, cl_key, org=org, key_type=key_type, days=client_days)
    return True


def check_client_pair(certs_dir) -> None:
    """Raise MachineError naming the file unless certs_dir's CA and client pair parse,
    belong together, and the client certificate is signed by the CA."""
    d = Path(certs_dir)
    ca = _load_cert(d / CA_CERT, what="CA certificate")
    ca_k = _load_key(d / CA_KEY, what="CA key")
    _check_pair(ca, d / CA_CERT, ca_k, d / CA_KEY)
    cl = _load_cert(d / CLIENT_CERT, what="client certificate")
    cl_k = _load_key(d / CLIENT_KEY, what="client key")
    _check_pair(cl, d / CLIENT_CERT, cl_k, d / CLIENT_KEY)
    _check_signed_by(cl, d / CLIENT_CERT, ca, d / CA_CERT)


#: temp folders a CA is built in, beside the certs folder: .machine-certs-PID-RANDOM
#: (being built), .machine-certs-ready-PID-RANDOM (complete, about to replace the
#: certs folder), .machine-certs-old-PID-RANDOM (the replaced folder, being removed)
TEMP_PREFIX = ".machine-certs-"
_TEMP_DIR_RE = re.compile(r"^\.machine-certs-(?:(?P<kind>ready|old)-)?(?P<pid>\d+)-[0-9a-f]+$")
_OURS = (CA_CERT, CA_KEY, CLIENT_CERT, CLIENT_KEY)


def sweep_stale(certs_dir, *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove leftovers of killed CA creations and writes; the caller holds the store lock.

    Temp folders beside certs_dir (ours by their prefix) whose pid is dead or that
    are older than max_age_s are removed, except a complete (`ready`) one when the
    certs folder itself is gone: a run killed between its two renames is finished
    by moving that one into place. atomic_write's stale temp files inside
    certs_dir (one may be a copy of the CA key) are removed too.
    """
    d = Path(certs_dir)
    parent = d.parent
    removed: list[Path] = []
    try:
        entries = sorted(os.scandir(parent), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for e in entries:
        m = _TEMP_DIR_RE.match(e.name)
        if not m:
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or not is_stale(e.path, pid, max_age_s=max_age_s):
            continue
        if (m.group("kind") == "ready" and not os.path.lexists(d) and e.is_dir(follow_symlinks=False)
                and (Path(e.path) / CA_CERT).is_file() and (Path(e.path) / CA_KEY).is_file()):
            os.rename(e.path, d)
            fsync_dir(parent)
            continue
        if remove_path(e.path):
            removed.append(Path(e.path))
    if d.is_dir() and not d.is_symlink():
        removed += sweep_temp_files(d, max_age_s=max_age_s)
    return removed


def _create_ca_dir(d: Path, *, org: str, key_type: str, ca_days: int, client_days: int) -> None:
    parent = d.parent
    ensure_dir(parent, PRIVATE_DIR)
    tag = f"{os.getpid()}-{secrets.token_hex(6)}"
    build = parent / f"{TEMP_PREFIX}{tag}"
    ready = parent / f"{TEMP_PREFIX}ready-{tag}"
    old = parent / f"{TEMP_PREFIX}old-{tag}"
    os.mkdir(build, PRIVATE_DIR)
    os.chmod(build, PRIVATE_DIR)
    try:
        generate_ca(build / CA_CERT, build / CA_KEY, org=org, key_type=key_type, days=ca_days)
        generate_client_cert(build / CA_CERT, build / CA_KEY, build / CLIENT_CERT, build / CLIENT_KEY,
                             org=org, key_type=key_type, days=client_days)
        # Anything else the old folder held (not ours to drop) moves along with it.
        if d.is_dir() and not d.is_symlink():
            for e in os.scandir(d):
                if e.name in _OURS or _TEMP_FILE_NAME(e.name) or not e.is_file(follow_symlinks=False):
                    continue
                shutil.copy2(e.path, build / e.name)
        fsync_dir(build)
        os.rename(build, ready)  # complete: from here a sweep finishes the job rather than undo it
        fsync_dir(parent)
    except BaseException:
        remove_path(build)
        raise
    if os.path.lexists(d):
        try:
            os.rename(ready, d)  # replaces an empty folder in one step
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                remove_path(ready)
                raise
            os.rename(d, old)
            os.rename(ready, d)
            fsync_dir(parent)
            remove_path(old)
    else:
        os.rename(ready, d)
    os.chmod(d, PRIVATE_DIR)
    fsync_dir(parent)


def _TEMP_FILE_NAME(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- inspection


def cert_info(path) -> CertInfo:
    cert = _load_cert(path)
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(v.value) for v in san_ext if isinstance(v, (x509.DNSName, x509.IPAddress)))
    except x509.ExtensionNotFound:
        sans = ()
    fp = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=sans,
        fingerprint_sha256=":".join(fp[i : i + 2] for i in range(0, len(fp), 2)),
        is_ca=_is_ca(cert),
    )


def verify_chain(ca_cert_path, cert_path) -> None:
    """Raise MachineError unless cert_path is signed by ca_cert_path and both are in date."""
    ca = _load_cert(ca_cert_path)
    cert = _load_cert(cert_path)
    _check_validity(ca, ca_cert_path, "CA certificate")
    _check_signed_by(cert, cert_path, ca, ca_cert_path)
    _check_validity(cert, cert_path, "certificate")


def check_key_pair(cert_path, key_path) -> None:
    """Raise MachineError if the private key at key_path does not match cert_path."""
    cert = _load_cert(cert_path)
    key = _load_key(key_path)
    _check_pair(cert, cert_path, key, key_path)


def validate_byo(ca_cert, ca_key, client_cert=None, client_key=None) -> None:
    """Check a bring-your-own CA (and optionally client pair) before using it.

    Files exist and parse, each key matches its certificate, the CA is a CA
    (basicConstraints ca=True, keyCertSign if keyUsage is present), the client
    certificate is signed by the CA, usable for clientAuth, and in date.
    """
    if (client_cert is None) != (client_key is None):
        given, flag = ("client certificate", "--tls-client-key") if client_cert else (
            "client key",
            "--tls-client-cert",
        )
        raise MachineError(
            f"a {given} was given without its pair", f"pass {flag} as well, or neither"
        )

    ca = _load_cert(ca_cert, what="CA certificate", flag="--tls-ca-cert")
    ca_k = _load_key(ca_key, what="CA key", flag="--tls-ca-key")
    if not _is_ca(ca):
        raise MachineError(
            f"{ca_cert} is not a CA certificate (basicConstraints CA:TRUE is missing)",
            "pass the certificate of the CA itself with --tls-ca-cert, not a leaf certificate",
        )
    ku = _ext(ca, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        raise MachineError(
            f"{ca_cert} may not sign certificates (keyUsage lacks keyCertSign)",
            "reissue the CA with keyUsage keyCertSign, or let Machine create its own CA",
        )
    _check_pair(ca, ca_cert, ca_k, ca_key, flag="--tls-ca-key")
    _check_validity(ca, ca_cert, "CA certificate")

    if client_cert is None:
        return
    cl = _load_cert(client_cert, what="client certificate", flag="--tls-client-cert")
    cl_k = _load_key(client_key, what="client key", flag="--tls-client-key")
    _check_pair(cl, client_cert, cl_k, client_key, flag="--tls-client-key")
    _check_signed_by(cl, client_cert, ca, ca_cert)
    _check_validity(cl, client_cert, "client certificate")
    eku = _ext(cl, x509.ExtendedKeyUsage)
    if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise MachineError(
            f"{client_cert} is not valid for client authentication (extendedKeyUsage lacks clientAuth)",
            "issue the client certificate with extendedKeyUsage clientAuth",
        )


# --------------------------------------------------------------------------- internals


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _check_days(days: int) -> None:
    if not isinstance(days, int) or days < 1:
        raise MachineError(f"invalid certificate lifetime {days!r} days", "use a whole number of days, at least 1")


def _new_key(key_type: str):
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa4096":
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    raise MachineError(f"unknown key type {key_type!r}", f"use one of: {', '.join(KEY_TYPES)}")


def _hash_for(key):
    # Ed25519/Ed448 (possible in a bring-your-own CA) sign without a separate hash.
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_usage(*, digital_signature=False, key_encipherment=False, key_cert_sign=False, crl_sign=False):
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _base_builder(subject, issuer, public_key, now, not_after) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
    )


def _san_list(entries: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen: set = set()
    for raw in entries:
        entry = str(raw).strip()
        if entry.startswith("[") and entry.endswith("]"):  # "[::1]" as written in URLs
            entry = entry[1:-1]
        if not entry:
            continue
        try:
            # A zone ("fe80::1%eth0") means nothing to a remote peer; drop it.
            ip = ipaddress.ip_address(entry.split("%", 1)[0] if "%" in entry else entry)
        except ValueError:
            ip = None
        if ip is not None:
            gn, dedupe_key = x509.IPAddress(ip), ("ip", ip)
        else:
            gn, dedupe_key = x509.DNSName(_dns_name(entry)), ("dns", _dns_name(entry).lower())
        if dedupe_key not in seen:
            seen.add(dedupe_key)
            out.append(gn)
    return out


def _dns_name(entry: str) -> str:
    if any(c.isspace() or c in "/:@" for c in entry):
        raise MachineError(
            f"invalid subject alternative name {entry!r}", "use an IP address or a DNS name"
        )
    try:
        entry.encode("ascii")
        return entry
    except UnicodeEncodeError:
        pass
    try:
        return entry.encode("idna").decode("ascii")
    except UnicodeError:
        raise MachineError(
            f"invalid subject alternative name {entry!r}", "use an IP address or a DNS name"
        ) from None


def _generate_leaf(ca_cert_path, ca_key_path, cert_path, key_path, *, subject, ekus, sans, key_type, days, now):
    _check_days(days)
    key = _new_key(key_type)
    ca = _load_cert(ca_cert_path, what="CA certificate")
    ca_key = _load_key(ca_key_path, what="CA key")
    _check_pair(ca, ca_cert_path, ca_key, ca_key_path)
    now = now or _utcnow()
    # A leaf that outlives its CA is never usable past the CA's expiry; say so in the cert.
    not_after = min(now + timedelta(days=days), ca.not_valid_after_utc)

    ca_ski = _ext(ca, x509.SubjectKeyIdentifier)
    aki = (
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
        if ca_ski is not None
        else x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())
    )
    builder = (
        _base_builder(subject, ca.subject, key.public_key(), now, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey)),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, _hash_for(ca_key))
    _write_pair(cert, key, cert_path, key_path)


def _write_pair(cert, key, cert_path, key_path) -> None:
    if isinstance(key, rsa.RSAPrivateKey):
        fmt = serialization.PrivateFormat.TraditionalOpenSSL  # "RSA PRIVATE KEY"
    else:
        fmt = serialization.PrivateFormat.PKCS8  # "PRIVATE KEY"
    key_pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    # Key first: a crash in between leaves a key without a cert, which callers
    # treat as missing, never a cert whose key is gone.
    atomic_write(key_path, key_pem, mode=PRIVATE_FILE)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_FILE)


#: no PEM certificate or key we handle comes near this; a bigger "file" is not one
MAX_PEM_BYTES = 1 << 20


def _read(path, what: str, flag: str | None) -> bytes:
    try:
        return read_small_file(path, MAX_PEM_BYTES)
    except FileNotFoundError:
        raise MachineError(
            f"{what} {path} not found",
            f"check the path given with {flag}" if flag else "check the path, or regenerate it",
        ) from None
    except ValueError as e:  # not a regular file, or too big
        raise MachineError(f"cannot read {what} {path}: {e}", "give the path of a PEM file") from None
    except OSError as e:
        raise MachineError(f"cannot read {what} {path}: {e.strerror or e}", "check its permissions") from None


def _load_cert(path, *, what: str = "certificate", flag: str | None = None) -> x509.Certificate:
    data = _read(path, what, flag)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise MachineError(
            f"cannot parse {what} {path}: not a valid PEM or DER X.509 certificate ({_short(e)})",
            f"check that {os.fspath(path)!r} is a certificate, not a key or another file"
            + (f" (given with {flag})" if flag else ""),
        ) from None


def _load_key(path, *, what: str = "private key", flag: str | None = None):
    data = _read(path, what, flag)
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when the key is encrypted and no password was given.
        raise MachineError(
            f"{what} {path} is encrypted with a passphrase",
            f"decrypt it first: openssl pkey -in {path} -out <new file>, then use that file",
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise MachineError(
            f"cannot parse {what} {path}: not a valid unencrypted private key ({_short(e)})",
            f"check that {os.fspath(path)!r} is a private key, not a certificate or another file"
            + (f" (given with {flag})" if flag else ""),
        ) from None


def _short(e: Exception) -> str:
    s = str(e).splitlines()[0] if str(e) else type(e).__name__
    return s[:120]


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_pair(cert, cert_path, key, key_path, *, flag: str | None = None) -> None:
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise MachineError(
            f"private key {key_path} does not match certificate {cert_path}",
            (f"pass the key that belongs to this certificate with {flag}" if flag
             else "use the key that was generated with this certificate, or regenerate both"),
        )


def _check_signed_by(cert, cert_path, ca, ca_path) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, InvalidSignature, TypeError, UnsupportedAlgorithm):
        raise MachineError(
            f"certificate {cert_path} is not signed by the CA {ca_path}",
            "regenerate it from this CA (machine regenerate-certs), or use the CA that issued it",
        ) from None


def _check_validity(cert, path, what: str) -> None:
    now = _utcnow()
    if now < cert.not_valid_before_utc:
        raise MachineError(
            f"{what} {path} is not valid yet (valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)",
            "check this computer's clock, or regenerate the certificate",
        )
    if now >= cert.not_valid_after_utc:
        raise MachineError(
            f"{what} {path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            "regenerate it (machine regenerate-certs; for the CA, create a new one)",
        )


def _ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    return bool(bc and bc.ca)
