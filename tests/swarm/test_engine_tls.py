"""client_for: the Docker SDK talks to an engine over our mutual TLS, with the machine's CA even when
the environment names another bundle (REQUESTS_CA_BUNDLE is preset on many machines, and requests
lets it override a session's CA), and not through an HTTPS proxy from the environment.

The engine is a small HTTPS server on 127.0.0.1 that demands a client certificate from our CA."""
from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from machine import certs
from machine.errors import MachineError
from machine.model import Host

pytestmark = pytest.mark.swarm


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/version": {"ApiVersion": "1.41", "Version": "20.10.24"},
                "/v1.41/info": {"Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": False}}.get(
            self.path.split("?")[0])
        self.send_response(200 if body else 404)
        data = json.dumps(body or {"message": "no"}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def engine(tmp_path):
    d = tmp_path
    certs.generate_ca(d / "ca.pem", d / "ca-key.pem")
    certs.generate_server_cert(d / "ca.pem", d / "ca-key.pem", d / "server.pem", d / "server-key.pem",
                               common_name="engine", sans=["127.0.0.1"])
    certs.generate_client_cert(d / "ca.pem", d / "ca-key.pem", d / "cert.pem", d / "key.pem")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "server.pem"), str(d / "server-key.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    host = Host(name="e1", driver_name="none")
    host.machine.url = f"tcp://127.0.0.1:{srv.server_address[1]}"
    a = host.auth
    a.ca_cert_path, a.client_cert_path, a.client_key_path = str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem")
    yield host
    srv.shutdown()


def test_machine_ca_wins_over_the_environment(engine, monkeypatch, tmp_path):
    from machine.swarm import client_for, swarm_info

    other = tmp_path / "other-ca.pem"
    certs.generate_ca(other, tmp_path / "other-key.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens: a proxy would fail
    client = client_for(engine)
    assert client.api._version == "1.41"
    assert swarm_info(client) == {"LocalNodeState": "inactive"}


def test_wrong_ca_is_one_line(engine, tmp_path):
    from machine.swarm import client_for

    certs.generate_ca(tmp_path / "wrong.pem", tmp_path / "wrong-key.pem")
    engine.auth.ca_cert_path = str(tmp_path / "wrong.pem")
    with pytest.raises(MachineError) as e:
        client_for(engine)
    assert "cannot reach the engine of e1" in str(e.value) and "\n" not in str(e.value)
