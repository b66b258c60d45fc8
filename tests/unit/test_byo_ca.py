"""Bring-your-own CA (docker-machine's --tls-ca-cert/--tls-ca-key/--tls-client-cert/--tls-client-key)."""
from __future__ import annotations

import json

from machine import certs


def make_ca(tmp_path, name="byo"):
    d = tmp_path / name
    d.mkdir()
    certs.generate_ca(d / "ca.pem", d / "ca-key.pem", org="corp")
    certs.generate_client_cert(d / "ca.pem", d / "ca-key.pem", d / "cert.pem", d / "key.pem", org="corp")
    return d


def test_create_with_own_ca_and_client(cli, store_path, tmp_path):
    d = make_ca(tmp_path)
    r = cli("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "--tls-ca-cert", str(d / "ca.pem"),
            "--tls-ca-key", str(d / "ca-key.pem"), "--tls-client-cert", str(d / "cert.pem"),
            "--tls-client-key", str(d / "key.pem"), "b1")
    assert r.code == 0, r
    cfg = json.loads((store_path / "machines/b1/config.json").read_text())
    assert cfg["HostOptions"]["AuthOptions"]["CaCertPath"] == str(d / "ca.pem")
    # the store's own CA was never made: the user's is used
    assert not (store_path / "certs/ca.pem").exists()
    assert (store_path / "machines/b1/ca.pem").read_bytes() == (d / "ca.pem").read_bytes()
    assert f'--tlscacert="{d}/ca.pem"' in cli("config", "--no-check", "b1").out


def test_own_ca_without_client_cert_gets_one_signed_by_it(cli, store_path, tmp_path):
    d = make_ca(tmp_path)
    r = cli("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "--tls-ca-cert", str(d / "ca.pem"),
            "--tls-ca-key", str(d / "ca-key.pem"), "b2")
    assert r.code == 0, r
    certs.verify_chain(d / "ca.pem", store_path / "certs/cert.pem")


def test_client_cert_from_another_ca_is_refused(cli, store_path, tmp_path):
    d, other = make_ca(tmp_path), make_ca(tmp_path, "other")
    r = cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "--tls-ca-cert", str(d / "ca.pem"),
            "--tls-ca-key", str(d / "ca-key.pem"), "--tls-client-cert", str(other / "cert.pem"),
            "--tls-client-key", str(other / "key.pem"), "b3")
    assert r.code != 0 and "Traceback" not in r.err
    assert not (store_path / "machines/b3").exists()
