"""machine.certs: real keys and certificates, checked with cryptography, openssl and a TLS handshake."""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from machine import certs
from machine.errors import MachineError

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")

NOW = datetime.now(timezone.utc)


# --------------------------------------------------------------------------- helpers


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl_verify(ca, cert, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OPENSSL, "verify", "-x509_strict", *extra, "-CAfile", str(ca), str(cert)],
        capture_output=True,
        text=True,
        timeout=30,
    )


class CA:
    """A CA in a folder, plus helpers to issue leaves from it."""

    def __init__(self, d: Path, key_type="ecdsa", **kw):
        self.dir = d
        self.cert = d / "ca.pem"
        self.key = d / "ca-key.pem"
        self.org = kw.get("org", "machine")
        certs.generate_ca(self.cert, self.key, key_type=key_type, **kw)

    def client(self, name="client", **kw):
        c, k = self.dir / f"{name}.pem", self.dir / f"{name}-key.pem"
        kw.setdefault("org", self.org)
        certs.generate_client_cert(self.cert, self.key, c, k, **kw)
        return c, k

    def server(self, name="server", sans=("10.0.0.5", "node1.example.test"), **kw):
        c, k = self.dir / f"{name}.pem", self.dir / f"{name}-key.pem"
        kw.setdefault("common_name", "node1")
        kw.setdefault("org", self.org)
        certs.generate_server_cert(self.cert, self.key, c, k, sans=list(sans), **kw)
        return c, k


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CA:
    return CA(tmp_path_factory.mktemp("ca"), org="acme")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> CA:
    return CA(tmp_path_factory.mktemp("other"), org="evil")


@pytest.fixture(scope="module")
def server_pair(ca):
    return ca.server("srv", sans=["10.0.0.5", "node1.example.test", "fd00::5"])


@pytest.fixture(scope="module")
def client_pair(ca):
    return ca.client("cli")


# --------------------------------------------------------------------------- CA


def test_ca_is_a_proper_self_signed_ca(ca):
    cert = load(ca.cert)
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "acme"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acme CA"
    cert.verify_directly_issued_by(cert)  # self-signed signature is valid
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    # backdated for clock skew, ~10 years long
    now = datetime.now(timezone.utc)  # not the module's NOW: a long test session runs before this
    assert now - timedelta(minutes=6) < cert.not_valid_before_utc < now - timedelta(minutes=4)
    assert (cert.not_valid_after_utc - now).days in (3649, 3650)


def test_ca_file_modes_and_key_format(ca):
    assert mode(ca.key) == 0o600
    assert mode(ca.cert) == 0o644
    pem = ca.key.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    serialization.load_pem_private_key(pem, password=None)


def test_random_serials(ca, tmp_path):
    a, _ = ca.client("s1")
    b, _ = ca.client("s2")
    assert load(a).serial_number != load(b).serial_number
    assert load(a).serial_number.bit_length() > 64


# --------------------------------------------------------------------------- leaves


def test_server_cert_sans_ekus_and_chain(ca, server_pair):
    cert_path, key_path = server_pair
    cert = load(cert_path)
    cert.verify_directly_issued_by(load(ca.cert))

    san = ext(cert, x509.SubjectAlternativeName).value
    ips = san.get_values_for_type(x509.IPAddress)
    dns = san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.0.0.5") in ips
    assert ipaddress.ip_address("fd00::5") in ips
    assert ipaddress.ip_address("127.0.0.1") in ips
    assert "node1.example.test" in dns and "localhost" in dns
    # IPs never end up as DNS names
    assert "10.0.0.5" not in dns and "127.0.0.1" not in dns

    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not ku.value.key_encipherment  # ECDSA keys cannot encipher
    assert not ku.value.key_cert_sign
    assert ext(cert, x509.BasicConstraints).value.ca is False
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(load(ca.cert), x509.SubjectKeyIdentifier).value.digest
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node1"
    assert cert.issuer == load(ca.cert).subject
    assert mode(key_path) == 0o600 and mode(cert_path) == 0o644


def test_server_sans_are_deduplicated_and_normalised(ca):
    cert_path, _ = ca.server(
        "dedupe",
        sans=["localhost", "LOCALHOST", "127.0.0.1", " 10.1.1.1 ", "10.1.1.1", "[::1]", "::1", "", "h.test"],
    )
    san = ext(load(cert_path), x509.SubjectAlternativeName).value
    ips = san.get_values_for_type(x509.IPAddress)
    dns = san.get_values_for_type(x509.DNSName)
    assert sorted(map(str, ips)) == ["10.1.1.1", "127.0.0.1", "::1"]
    assert sorted(d.lower() for d in dns) == ["h.test", "localhost"]
    assert certs.cert_info(cert_path).sans.count("127.0.0.1") == 1


def test_server_cert_always_has_localhost(ca):
    cert_path, _ = ca.server("bare", sans=[])
    assert set(certs.cert_info(cert_path).sans) == {"localhost", "127.0.0.1"}


def test_long_common_name_is_accepted(ca):
    name = "n" * 80 + ".example.test"
    cert_path, _ = ca.server("longcn", sans=[name], common_name=name)
    assert name in certs.cert_info(cert_path).sans


def test_invalid_san_and_key_type_and_days(ca, tmp_path):
    with pytest.raises(MachineError, match="invalid subject alternative name"):
        ca.server("badsan", sans=["not a host"])
    with pytest.raises(MachineError, match="unknown key type 'dsa'") as e:
        certs.generate_ca(tmp_path / "c.pem", tmp_path / "k.pem", key_type="dsa")
    assert "ecdsa, rsa2048, rsa4096" in e.value.hint
    with pytest.raises(MachineError, match="lifetime"):
        ca.client("zero", days=0)
    assert not (tmp_path / "c.pem").exists()


def test_client_cert_ekus(ca, client_pair):
    cert_path, key_path = client_pair
    cert = load(cert_path)
    cert.verify_directly_issued_by(load(ca.cert))
    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, x509.BasicConstraints).value.ca is False
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier is not None
    assert mode(key_path) == 0o600


@needs_openssl
def test_openssl_verifies_chain_and_purposes(ca, server_pair, client_pair):
    srv, _ = server_pair
    cli, _ = client_pair
    for cert in (srv, cli):
        r = openssl_verify(ca.cert, cert)
        assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    assert openssl_verify(ca.cert, srv, "-purpose", "sslserver").returncode == 0
    assert openssl_verify(ca.cert, srv, "-purpose", "sslclient").returncode == 0  # swarm nodes
    assert openssl_verify(ca.cert, cli, "-purpose", "sslclient").returncode == 0
    r = openssl_verify(ca.cert, cli, "-purpose", "sslserver")
    assert r.returncode != 0  # a client cert must not work as a server cert


@needs_openssl
def test_openssl_rejects_cert_from_other_ca(ca, other_ca):
    foreign, _ = other_ca.client("foreign")
    r = openssl_verify(ca.cert, foreign)
    assert r.returncode != 0


@needs_openssl
def test_openssl_reads_generated_keys(ca, server_pair):
    for key in (ca.key, server_pair[1]):
        r = subprocess.run([OPENSSL, "pkey", "-in", str(key), "-noout"], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr


def test_rsa2048_ca_and_leaves(tmp_path):
    rca = CA(tmp_path, key_type="rsa2048")
    assert rca.key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert load(rca.cert).public_key().key_size == 2048
    srv, srv_key = rca.server(key_type="rsa2048")
    cert = load(srv)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    assert ext(cert, x509.KeyUsage).value.key_encipherment  # RSA: keyEncipherment set
    cert.verify_directly_issued_by(load(rca.cert))
    certs.check_key_pair(srv, srv_key)
    # an ECDSA leaf under an RSA CA works too
    cli, cli_key = rca.client()
    certs.verify_chain(rca.cert, cli)
    certs.check_key_pair(cli, cli_key)
    assert not ext(load(cli), x509.KeyUsage).value.key_encipherment
    if OPENSSL:
        assert openssl_verify(rca.cert, srv, "-purpose", "sslserver").returncode == 0
        assert openssl_verify(rca.cert, cli, "-purpose", "sslclient").returncode == 0


def test_rsa4096_server_cert(ca, tmp_path):
    c, k = tmp_path / "s.pem", tmp_path / "s-key.pem"
    certs.generate_server_cert(ca.cert, ca.key, c, k, common_name="big", sans=["big.test"], key_type="rsa4096")
    assert load(c).public_key().key_size == 4096
    assert k.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert mode(k) == 0o600
    certs.verify_chain(ca.cert, c)
    certs.check_key_pair(c, k)
    if OPENSSL:
        assert openssl_verify(ca.cert, c, "-purpose", "sslserver").returncode == 0


def test_leaf_never_outlives_its_ca(tmp_path):
    short = CA(tmp_path, days=30)
    c, _ = short.client(days=1095)
    assert load(c).not_valid_after_utc == load(short.cert).not_valid_after_utc


# --------------------------------------------------------------------------- ensure_ca_and_client


def _snapshot(d: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, mode(p)) for p in sorted(d.iterdir())}


def test_ensure_ca_and_client_creates_then_is_idempotent(tmp_path):
    d = tmp_path / "certs"
    assert certs.ensure_ca_and_client(d, org="me") is True
    names = {"ca.pem", "ca-key.pem", "cert.pem", "key.pem"}
    assert {p.name for p in d.iterdir()} == names
    assert mode(d / "ca-key.pem") == 0o600 and mode(d / "key.pem") == 0o600
    assert mode(d / "ca.pem") == 0o644 and mode(d / "cert.pem") == 0o644
    certs.verify_chain(d / "ca.pem", d / "cert.pem")
    certs.check_key_pair(d / "cert.pem", d / "key.pem")
    certs.check_key_pair(d / "ca.pem", d / "ca-key.pem")
    assert certs.cert_info(d / "ca.pem").is_ca

    before = _snapshot(d)
    assert certs.ensure_ca_and_client(d, org="me") is False
    assert _snapshot(d) == before


def test_ensure_recreates_only_missing_client(tmp_path):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    ca_before = ((d / "ca.pem").read_bytes(), (d / "ca-key.pem").read_bytes())
    old_client = (d / "cert.pem").read_bytes()
    (d / "key.pem").unlink()
    assert certs.ensure_ca_and_client(d) is True
    assert ((d / "ca.pem").read_bytes(), (d / "ca-key.pem").read_bytes()) == ca_before
    assert (d / "cert.pem").read_bytes() != old_client
    certs.verify_chain(d / "ca.pem", d / "cert.pem")
    certs.check_key_pair(d / "cert.pem", d / "key.pem")


def test_ensure_new_ca_reissues_orphaned_client(tmp_path):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    (d / "ca.pem").unlink()
    (d / "ca-key.pem").unlink()
    assert certs.ensure_ca_and_client(d) is True
    certs.verify_chain(d / "ca.pem", d / "cert.pem")  # client re-issued by the new CA


def test_ensure_refuses_half_a_ca(tmp_path):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    (d / "ca-key.pem").unlink()
    with pytest.raises(MachineError, match="ca-key.pem is missing") as e:
        certs.ensure_ca_and_client(d)
    assert "ca.pem" in e.value.hint or "ca-key.pem" in e.value.hint
    assert (d / "ca.pem").exists()  # nothing replaced


def test_ensure_with_rsa_key_type(tmp_path):
    d = tmp_path / "certs"
    assert certs.ensure_ca_and_client(d, key_type="rsa2048", client_days=10)
    assert (d / "key.pem").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert certs.cert_info(d / "cert.pem").days_left == 10


# --------------------------------------------------------------------------- cert_info


def test_cert_info(ca, server_pair):
    cert_path, _ = server_pair
    info = certs.cert_info(cert_path)
    assert info.subject == "CN=node1,O=acme"
    assert info.issuer == "CN=acme CA,O=acme"
    assert info.is_ca is False
    assert info.expired is False
    assert info.days_left == 1095
    assert info.not_before.tzinfo is not None
    assert info.not_after - info.not_before == timedelta(days=1095, minutes=5)
    assert set(info.sans) == {"10.0.0.5", "node1.example.test", "fd00::5", "localhost", "127.0.0.1"}
    assert len(info.fingerprint_sha256) == 95 and info.fingerprint_sha256.count(":") == 31
    if OPENSSL:
        out = subprocess.run(
            [OPENSSL, "x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha256"],
            capture_output=True, text=True, timeout=30,
        ).stdout
        assert out.strip().split("=", 1)[1] == info.fingerprint_sha256
    assert certs.cert_info(ca.cert).is_ca is True
    with pytest.raises(Exception):
        info.subject = "x"  # frozen


def test_cert_info_expired(ca, tmp_path):
    c, k = tmp_path / "old.pem", tmp_path / "old-key.pem"
    certs.generate_client_cert(ca.cert, ca.key, c, k, days=10, _now=NOW - timedelta(days=20))
    info = certs.cert_info(c)
    assert info.expired is True
    assert info.days_left in (-10, -9)


def test_cert_info_unparseable_names_file(ca, tmp_path):
    with pytest.raises(MachineError, match="cannot parse certificate .*ca-key.pem"):
        certs.cert_info(ca.key)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(MachineError, match=str(junk)):
        certs.cert_info(junk)
    with pytest.raises(MachineError, match="not found"):
        certs.cert_info(tmp_path / "nope.pem")


# --------------------------------------------------------------------------- verify_chain / check_key_pair


def test_verify_chain_ok(ca, server_pair, client_pair):
    certs.verify_chain(ca.cert, server_pair[0])
    certs.verify_chain(ca.cert, client_pair[0])


def test_verify_chain_other_ca(ca, other_ca):
    foreign, _ = other_ca.client("foreign2")
    with pytest.raises(MachineError, match="not signed by the CA") as e:
        certs.verify_chain(ca.cert, foreign)
    assert str(foreign) in e.value.message and str(ca.cert) in e.value.message


def test_verify_chain_same_subject_different_key(ca, tmp_path):
    # Same CA name, different key: the issuer name matches, the signature must not.
    twin = CA(tmp_path, org="acme")
    c, _ = twin.client()
    with pytest.raises(MachineError, match="not signed by the CA"):
        certs.verify_chain(ca.cert, c)


def test_verify_chain_expired_and_not_yet_valid(ca, tmp_path):
    c, k = tmp_path / "exp.pem", tmp_path / "exp-key.pem"
    certs.generate_server_cert(
        ca.cert, ca.key, c, k, common_name="x", sans=[], days=1, _now=NOW - timedelta(days=3)
    )
    with pytest.raises(MachineError, match="expired on") as e:
        certs.verify_chain(ca.cert, c)
    assert str(c) in e.value.message
    if OPENSSL:
        assert openssl_verify(ca.cert, c).returncode != 0

    f, fk = tmp_path / "future.pem", tmp_path / "future-key.pem"
    certs.generate_client_cert(ca.cert, ca.key, f, fk, _now=NOW + timedelta(days=2))
    with pytest.raises(MachineError, match="not valid yet"):
        certs.verify_chain(ca.cert, f)


def test_verify_chain_expired_ca(tmp_path):
    old = CA(tmp_path, days=5, _now=NOW - timedelta(days=10))
    c, _ = old.client(_now=NOW - timedelta(days=10))
    with pytest.raises(MachineError, match="CA certificate .* expired"):
        certs.verify_chain(old.cert, c)


def test_check_key_pair(ca, server_pair, client_pair):
    certs.check_key_pair(*server_pair)
    certs.check_key_pair(ca.cert, ca.key)
    with pytest.raises(MachineError, match="does not match") as e:
        certs.check_key_pair(server_pair[0], client_pair[1])
    assert str(client_pair[1]) in e.value.message and str(server_pair[0]) in e.value.message
    with pytest.raises(MachineError, match="cannot parse private key"):
        certs.check_key_pair(server_pair[0], server_pair[0])


# --------------------------------------------------------------------------- validate_byo


def test_validate_byo_accepts_good_material(ca, client_pair):
    certs.validate_byo(ca.cert, ca.key)
    certs.validate_byo(ca.cert, ca.key, *client_pair)


def test_validate_byo_missing_file(ca, tmp_path):
    with pytest.raises(MachineError, match="CA certificate .*missing.pem not found") as e:
        certs.validate_byo(tmp_path / "missing.pem", ca.key)
    assert "--tls-ca-cert" in e.value.hint


def test_validate_byo_unparseable(ca, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(MachineError, match=f"cannot parse CA certificate {bad}"):
        certs.validate_byo(bad, ca.key)
    with pytest.raises(MachineError, match="cannot parse CA key") as e:
        certs.validate_byo(ca.cert, ca.cert)  # cert given where the key belongs
    assert "--tls-ca-key" in e.value.hint


def test_validate_byo_key_mismatch(ca, other_ca):
    with pytest.raises(MachineError, match=f"private key {other_ca.key} does not match certificate {ca.cert}"):
        certs.validate_byo(ca.cert, other_ca.key)


def test_validate_byo_leaf_is_not_a_ca(server_pair):
    with pytest.raises(MachineError, match="is not a CA certificate") as e:
        certs.validate_byo(*server_pair)
    assert str(server_pair[0]) in e.value.message


def test_validate_byo_client_from_other_ca(ca, other_ca):
    c, k = other_ca.client("foreign3")
    with pytest.raises(MachineError, match="not signed by the CA"):
        certs.validate_byo(ca.cert, ca.key, c, k)


def test_validate_byo_client_key_mismatch(ca, client_pair, server_pair):
    with pytest.raises(MachineError, match="does not match") as e:
        certs.validate_byo(ca.cert, ca.key, client_pair[0], server_pair[1])
    assert "--tls-client-key" in e.value.hint


def test_validate_byo_half_client_pair(ca, client_pair):
    with pytest.raises(MachineError, match="without its pair") as e:
        certs.validate_byo(ca.cert, ca.key, client_pair[0])
    assert "--tls-client-key" in e.value.hint


def test_validate_byo_client_without_client_auth(ca, tmp_path):
    # A leaf restricted to serverAuth, issued by the same CA with cryptography directly.
    ca_cert = load(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srv-only")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(minutes=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, certs.hashes.SHA256())
    )
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    with pytest.raises(MachineError, match="not valid for client authentication"):
        certs.validate_byo(ca.cert, ca.key, c, k)


def test_validate_byo_encrypted_key(ca, tmp_path):
    key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    enc = tmp_path / "enc-key.pem"
    enc.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(MachineError, match="encrypted with a passphrase") as e:
        certs.validate_byo(ca.cert, enc)
    assert "openssl pkey" in e.value.hint


# --------------------------------------------------------------------------- real TLS with mutual auth


class OneShotTLSServer:
    """Accept one connection on 127.0.0.1, require a client cert, echo one message."""

    def __init__(self, ca, server_pair):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*map(str, server_pair))
        self.ctx.load_verify_locations(cafile=str(ca.cert))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.peer = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(5)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.peer = tls.getpeercert()
                data = tls.recv(16)
                tls.sendall(b"pong:" + data)
        except (OSError, ssl.SSLError) as e:
            self.error = e

    def close(self):
        self.thread.join(5)
        self.sock.close()


def tls_client(ca, port, hostname, pair=None) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the default from Python 3.13 on
    if pair:
        ctx.load_cert_chain(*map(str, pair))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=hostname) as tls:
            tls.sendall(b"ping")
            data = tls.recv(16)
            if not data:
                raise ConnectionResetError("server closed the connection")
            return data


@pytest.mark.parametrize("hostname", ["127.0.0.1", "10.0.0.5", "localhost", "node1.example.test"])
def test_tls_mutual_auth_succeeds(ca, server_pair, client_pair, hostname):
    srv = OneShotTLSServer(ca, server_pair)
    try:
        assert tls_client(ca, srv.port, hostname, client_pair) == b"pong:ping"
    finally:
        srv.close()
    assert srv.error is None
    subject = dict(x[0] for x in srv.peer["subject"])
    assert subject["commonName"] == "acme client"


def test_tls_client_without_cert_is_refused(ca, server_pair):
    srv = OneShotTLSServer(ca, server_pair)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_client(ca, srv.port, "127.0.0.1", None)
    finally:
        srv.close()
    assert isinstance(srv.error, ssl.SSLError)
    assert "certificate" in str(srv.error).lower()


def test_tls_client_cert_from_other_ca_is_refused(ca, other_ca, server_pair):
    foreign = other_ca.client("foreign-tls")
    srv = OneShotTLSServer(ca, server_pair)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_client(ca, srv.port, "127.0.0.1", foreign)
    finally:
        srv.close()
    assert isinstance(srv.error, ssl.SSLError)


def test_tls_client_rejects_wrong_hostname(ca, server_pair, client_pair):
    srv = OneShotTLSServer(ca, server_pair)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"):
            tls_client(ca, srv.port, "other.example.test", client_pair)
    finally:
        srv.close()


# --------------------------------------------------------------------------- issue 13: crash-safe CA, garbled files


def _pair_matches(d: Path) -> None:
    certs.check_client_pair(d)  # raises MachineError naming the file otherwise


def test_ensure_builds_ca_in_a_temp_folder_and_renames_it_into_place(tmp_path, monkeypatch):
    # Stop right after the CA key is written, as kill -9 would: the certs folder
    # must hold no half CA, and the next run must create a whole one.
    d = tmp_path / "certs"
    d.mkdir()
    real = certs.generate_client_cert

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(certs, "generate_client_cert", boom)
    with pytest.raises(KeyboardInterrupt):
        certs.ensure_ca_and_client(d)
    assert sorted(os.listdir(d)) == []
    monkeypatch.setattr(certs, "generate_client_cert", real)
    assert certs.ensure_ca_and_client(d) is True
    _pair_matches(d)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["certs"]  # no temp folder left
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_sweep_removes_dead_writers_leftovers_and_finishes_a_ready_ca(tmp_path):
    d = tmp_path / "certs"
    pid = _dead_pid()
    # a killed build (half a CA, a copy of the CA key among it) and a killed write inside certs/
    half = tmp_path / f".machine-certs-{pid}-abc123"
    half.mkdir()
    (half / "ca-key.pem").write_text("secret")
    d.mkdir()
    stray = d / f".ca-key.pem.{pid}.0123456789ab.tmp"
    stray.write_text("secret")
    legacy = d / ".ca-key.pem.k2j_9xQz.tmp"  # tempfile.mkstemp name of older versions
    legacy.write_text("secret")
    os.utime(legacy, (0, 0))
    young_live = d / f".cert.pem.{os.getppid()}.0123456789ab.tmp"
    young_live.write_text("in progress")
    certs.sweep_stale(d)
    assert not half.exists() and not stray.exists() and not legacy.exists()
    assert young_live.exists()  # a live writer's, under a minute old

    # killed between the two renames: the complete CA is moved into place, not deleted
    shutil.rmtree(d)
    ready = tmp_path / f".machine-certs-ready-{pid}-abc124"
    certs.generate_ca(tmp_path / "x-ca.pem", tmp_path / "x-ca-key.pem")
    ready.mkdir()
    for src, dst in (("x-ca.pem", "ca.pem"), ("x-ca-key.pem", "ca-key.pem")):
        (tmp_path / src).rename(ready / dst)
    ca_fp = certs.cert_info(ready / "ca.pem").fingerprint_sha256
    assert certs.ensure_ca_and_client(d) is True  # re-issues the client pair only
    assert certs.cert_info(d / "ca.pem").fingerprint_sha256 == ca_fp
    _pair_matches(d)
    assert not ready.exists()


def test_ensure_keeps_other_files_of_a_certs_folder_without_ca(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    (d / "cert.pem").write_text("stale client cert of a lost CA")
    assert certs.ensure_ca_and_client(d)
    assert (d / "notes.txt").read_text() == "mine"
    _pair_matches(d)
    assert [p.name for p in tmp_path.iterdir()] == ["certs"]


def test_lone_client_cert_is_dropped_before_the_new_key_is_written(tmp_path, monkeypatch):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    (d / "key.pem").unlink()
    real_write = certs.atomic_write
    calls = []

    def write(path, data, mode=0o644):
        calls.append(Path(path).name)
        real_write(path, data, mode)
        if Path(path).name == "key.pem":
            raise KeyboardInterrupt  # killed between key and cert

    monkeypatch.setattr(certs, "atomic_write", write)
    with pytest.raises(KeyboardInterrupt):
        certs.ensure_ca_and_client(d)
    monkeypatch.setattr(certs, "atomic_write", real_write)
    assert not (d / "cert.pem").exists()  # never an old cert beside a new key
    assert certs.ensure_ca_and_client(d) is True
    _pair_matches(d)


@pytest.mark.parametrize("fname", ["ca.pem", "ca-key.pem", "cert.pem", "key.pem"])
@pytest.mark.parametrize("garbage", [b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nzz\n-----END PRIVATE KEY-----\n", b""])
def test_garbled_store_cert_or_key_is_one_line_naming_the_file(tmp_path, fname, garbage):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    (d / fname).write_bytes(garbage)
    if fname in ("ca.pem", "ca-key.pem"):
        (d / "cert.pem").unlink()  # make ensure do work, so it reads the CA
    with pytest.raises(MachineError) as ei:
        certs.ensure_ca_and_client(d)
        certs.check_client_pair(d)
    msg = str(ei.value)
    assert str(d / fname) in msg and "\n" not in msg


def test_mismatched_client_pair_is_reported(tmp_path):
    d = tmp_path / "certs"
    certs.ensure_ca_and_client(d)
    other = tmp_path / "other"
    certs.ensure_ca_and_client(other)
    shutil.copy(other / "key.pem", d / "key.pem")
    with pytest.raises(MachineError, match="key.pem does not match"):
        certs.ensure_ca_and_client(d)


@pytest.mark.parametrize("kind", ["fifo", "dir", "devzero"])
def test_special_file_in_place_of_a_pem_fails_at_once(tmp_path, kind):
    p = tmp_path / "ca.pem"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dir":
        p.mkdir()
    else:
        p.symlink_to("/dev/zero")
    with pytest.raises(MachineError, match="not a regular file") as ei:
        certs.cert_info(p)
    assert str(p) in str(ei.value)


def test_ensure_ca_under_umask_000(tmp_path):
    old = os.umask(0)
    try:
        d = tmp_path / "store" / "certs"
        certs.ensure_ca_and_client(d)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in d.iterdir()}
    assert modes == {"ca.pem": 0o644, "ca-key.pem": 0o600, "cert.pem": 0o644, "key.pem": 0o600}
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(d.parent.stat().st_mode) == 0o700
