"""docker-machine 0.16.2's behaviour that scripts and GitLab Runner rely on (issue 16).

Each test is one thing a docker-machine user's script did that must keep working.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from fakes import fake_driver  # noqa: F401


def dm_none_record(store, name: str, url: str) -> None:
    """A `none` machine as docker-machine 0.16.2 writes it (Driver.URL, no Machine section)."""
    mdir = store / "machines" / name
    mdir.mkdir(parents=True)
    (mdir / "config.json").write_text(json.dumps({
        "ConfigVersion": 3, "DriverName": "none", "Name": name,
        "Driver": {"IPAddress": "", "MachineName": name, "SSHUser": "", "SSHPort": 0, "SSHKeyPath": "",
                   "StorePath": str(store), "SwarmMaster": False, "SwarmHost": "", "SwarmDiscovery": "",
                   "URL": url},
        "HostOptions": {"Driver": "", "Memory": 0, "Disk": 0,
                        "EngineOptions": {"TlsVerify": True, "InstallURL": "https://get.docker.com"},
                        "SwarmOptions": {"IsSwarm": False},
                        "AuthOptions": {"CertDir": f"{store}/certs", "CaCertPath": f"{store}/certs/ca.pem",
                                        "ClientCertPath": f"{store}/certs/cert.pem",
                                        "ClientKeyPath": f"{store}/certs/key.pem", "StorePath": str(mdir)}}}))


def test_none_machine_from_docker_machine_keeps_its_url(cli, store_path):
    dm_none_record(store_path, "legacy", "tcp://127.0.0.1:2375")
    assert cli("url", "legacy").out == "tcp://127.0.0.1:2375\n"
    assert 'DOCKER_HOST="tcp://127.0.0.1:2375"' in cli("env", "--shell", "bash", "legacy").out
    assert "-H=tcp://127.0.0.1:2375" in cli("config", "--no-check", "legacy").out
    assert "tcp://127.0.0.1:2375" in cli("ls", "-t", "1", "--format", "{{.URL}}").out


def test_active_matches_docker_machine_url(store_path, fake_driver):
    from machine.api import Machines

    dm_none_record(store_path, "legacy", "tcp://127.0.0.1:2375")
    assert Machines(store_path).active({"DOCKER_HOST": "tcp://127.0.0.1:2375"}) == "legacy"


def test_every_error_exits_1(cli, store_path):
    for args in (["url", "ghost"], ["frobnicate"], ["ls", "--format", "{{.Nope}}"], ["create", "x1"],
                 ["create", "-d", "none", "--url", "tcp://127.0.0.1:9", "bad_name"], ["ls", "-t", "-1"],
                 ["create", "-d", "generic", "--generic-ip-address", "10.0.0.1", "--generic-ssh-port", "87958", "x"]):
        r = cli(*args)
        assert r.code == 1, (args, r)
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, (args, r.err)


def test_first_lines_scripts_grep_for(cli, store_path):
    assert cli("inspect", "ghost").err.startswith('Error: Docker machine "ghost" does not exist')
    assert cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "n1").code == 0
    assert cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "n1").err.startswith(
        'Error: Docker machine "n1" already exists')


def test_global_flags_of_docker_machine_are_accepted(cli, store_path):
    assert cli("--bugsnag-api-token=no-report", "create", "-d", "none", "--url", "tcp://127.0.0.1:9", "g1").code == 0
    for flags in (["--bugsnag-api-token", "x"], ["--native-ssh"], ["--github-api-token", "t"]):
        r = cli(*flags, "url", "g1")
        assert r.code == 0 and r.out == "tcp://127.0.0.1:9\n", (flags, r)


def test_global_tls_flags_are_create_defaults(cli, store_path, tmp_path):
    from machine import certs

    certs.generate_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    r = cli("--tls-ca-cert", str(tmp_path / "ca.pem"), "--tls-ca-key", str(tmp_path / "ca-key.pem"),
            "create", "-d", "none", "--url", "tcp://127.0.0.1:9", "byo")
    assert r.code == 0, r
    rec = json.loads((store_path / "machines" / "byo" / "config.json").read_text())
    assert rec["HostOptions"]["AuthOptions"]["CaCertPath"] == str(tmp_path / "ca.pem")


def test_rm_force_implies_yes_without_a_terminal(store_path, machine_bin):
    assert machine_bin("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "r1").code == 0
    r = machine_bin("rm", "-f", "r1", input="")
    assert r.code == 0 and "Successfully removed r1" in r.out, r
    assert not (store_path / "machines" / "r1").exists()


def test_env_unset_takes_no_name(cli, store_path):
    r = cli("env", "-u", "n1")
    assert r.code == 1 and "Expected no machine name when the -u flag is present" in r.err
    assert cli("env", "-u", "--shell", "bash").code == 0


def test_template_functions_and_fields(cli, store_path):
    assert cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "--engine-label", "a=b", "t1").code == 0
    out = cli("inspect", "-f", "{{prettyjson .Driver}}", "t1").out
    assert json.loads(out)["URL"] == "tcp://127.0.0.1:9" and out.startswith("{\n    ")
    r = cli("ls", "--format", "{{.Name}} {{.EngineOptions.Labels}} {{json .SwarmOptions.IsSwarm}} "
                              "{{upper .DriverName}} {{split .URL \":\"}}")
    assert r.out == "t1 [a=b] false NONE [tcp //127.0.0.1 9]\n", r


def test_ls_order_is_docker_machines(cli, store_path):
    for n in ("node10", "Node2", "node1", "alpha"):
        assert cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", n).code == 0
    assert cli("ls", "-q").out.split() == ["alpha", "node1", "Node2", "node10"]


def test_verbs_refuse_a_stopped_machine_whose_state_is_local(store_path, fake_driver):
    from machine.api import Machines
    from machine.errors import MachineError
    from machine.model import State

    m = Machines(store_path)
    m.create("s1", "fake")
    assert m.url("s1") == "tcp://127.0.0.1:2376"
    m.stop("s1")
    assert fake_driver.power["s1"] == State.STOPPED
    for verb in (m.url, m.config_flags, lambda n: m.env(n, shell="bash"), m.engine_version):
        with pytest.raises(MachineError, match="Host is not running"):
            verb("s1")
    m.start("s1")
    assert m.url("s1") == "tcp://127.0.0.1:2376"


@pytest.fixture
def silent_server():
    """A TCP server on loopback that accepts every connection and never answers."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_ls_over_many_hanging_hosts_takes_about_one_timeout(store_path, silent_server):
    from machine.api import Machines

    m = Machines(store_path)
    for i in range(120):
        m.create(f"h{i:03d}", "none", {"url": f"tcp://127.0.0.1:{silent_server}"}, context=False)
    t0 = time.monotonic()
    rows = m.ls(timeout=1.0)
    took = time.monotonic() - t0
    assert len(rows) == 120 and all(r.error for r in rows)
    # one total deadline, not one per host (120 s serially); bench/bench_ls_hanging.py measures it
    assert took < 15, f"ls took {took:.1f}s over 120 hanging hosts with a 1s timeout"


def test_bool_driver_flags_take_go_style_values(cli, store_path, fake_driver):
    """GitLab Runner's MachineOptions pass booleans as --flag=true (Go's flag package syntax)."""
    from machine.driver import DriverConfig, register_driver, setting
    from dataclasses import dataclass
    from fakes import FakeConfig, FakeDriver

    @dataclass
    class BoolConfig(FakeConfig):
        spot: bool = setting("Spot", False, flag="spot", alias="--fakecloud-spot", help="spot")

    class BoolDriver(FakeDriver):
        name = "boolfake"
        Config = BoolConfig

    register_driver("boolfake", BoolDriver)
    try:
        for i, (args, want) in enumerate(((["--boolfake-spot=true"], True), (["--boolfake-spot=false"], False),
                                          (["--boolfake-spot"], True), (["--fakecloud-spot=TRUE"], True),
                                          ([], False))):
            name = f"b{i}"
            r = cli("create", "-d", "boolfake", *args, name)
            assert r.code == 0, (args, r.err)
            rec = json.loads((store_path / "machines" / name / "config.json").read_text())
            assert rec["Driver"].get("Spot", False) is want, args
    finally:
        register_driver("boolfake", None)
