"""The CLI on `none` machines: every verb that answers from the store, and bad input."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def two_machines(cli):
    p1, p2 = closed_port(), closed_port()
    assert cli("create", "-q", "-d", "none", "--url", f"tcp://127.0.0.1:{p1}", "n1").code == 0
    assert cli("create", "-q", "-d", "none", "--url", f"tcp://127.0.0.2:{p2}", "n2").code == 0
    return p1, p2


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("machine version ")
    assert cli("version").out.startswith("machine version ")


def test_create_none_writes_record_certs_and_context(cli, store_path, two_machines):
    p1, _ = two_machines
    cfg = json.loads((store_path / "machines/n1/config.json").read_text())
    assert cfg["ConfigVersion"] == 3 and cfg["DriverName"] == "none" and cfg["Name"] == "n1"
    assert cfg["Driver"]["URL"] == f"tcp://127.0.0.1:{p1}"
    assert "Machine" not in cfg  # ours lives beside it, in machine.json
    assert json.loads((store_path / "machines/n1/machine.json").read_text())["Machine"]["Phase"] == "ready"
    for f in ("ca.pem", "cert.pem", "key.pem"):
        assert (store_path / "machines/n1" / f).exists()
    assert stat.S_IMODE(os.stat(store_path / "machines/n1/key.pem").st_mode) == 0o600
    # the docker context is in the docker CLI's own store
    from machine import clientconfig

    assert clientconfig.context_exists("n1")


def test_ls_table_quiet_filters_format_json(cli, two_machines):
    r = cli("ls")
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "ACTIVE", "DRIVER", "STATE", "URL"]
    assert [ln.split()[0] for ln in lines[1:]] == ["n1", "n2"]
    assert "refused" in r.out  # nothing listens there: the error column says so
    assert cli("ls", "-q").out == "n1\nn2\n"
    assert cli("ls", "-q", "--filter", "name=2$").out == "n2\n"
    assert cli("ls", "-q", "--filter", "driver=qemu").out == ""
    assert cli("ls", "-q", "--filter", "state=Running").out == "n1\nn2\n"
    assert cli("ls", "-q", "--filter", "state=Stopped").out == ""
    assert cli("ls", "--format", "{{.Name}}={{.DriverName}}").out == "n1=none\nn2=none\n"
    rows = json.loads(cli("ls", "--format", "json").out)
    assert [r["Name"] for r in rows] == ["n1", "n2"] and rows[0]["State"] == "Running"
    table = cli("ls", "--format", "table {{.Name}}\t{{.URL}}").out.splitlines()
    assert table[0].split() == ["NAME", "URL"]
    bad = cli("ls", "--filter", "colour=blue")
    assert bad.code != 0 and "invalid filter" in bad.err and "Traceback" not in bad.err


def test_ls_label_filter(cli):
    assert cli("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "--engine-label", "env=prod", "p1").code == 0
    assert cli("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "p2").code == 0
    assert cli("ls", "-q", "--filter", "label=env=prod").out == "p1\n"


def test_env_config_url_ip_inspect(cli, store_path, two_machines):
    p1, _ = two_machines
    r = cli("env", "--shell", "bash", "n1")
    assert r.out == (
        'export DOCKER_TLS_VERIFY="1"\n'
        f'export DOCKER_HOST="tcp://127.0.0.1:{p1}"\n'
        f'export DOCKER_CERT_PATH="{store_path}/machines/n1"\n'
        'export DOCKER_MACHINE_NAME="n1"\n'
        "# Run this command to configure your shell: \n"
        "# eval $(machine env --shell bash n1)\n"
    ) or r.out.startswith('export DOCKER_TLS_VERIFY="1"\n')
    assert f'DOCKER_HOST="tcp://127.0.0.1:{p1}"' in r.out
    fish = cli("env", "--shell", "fish", "n1").out
    assert f'set -gx DOCKER_HOST "tcp://127.0.0.1:{p1}";' in fish
    unset = cli("env", "--shell", "bash", "-u").out
    assert "unset DOCKER_HOST\n" in unset
    assert cli("config", "--no-check", "n1").out == (
        f'--tlsverify\n--tlscacert="{store_path}/certs/ca.pem"\n--tlscert="{store_path}/certs/cert.pem"\n'
        f'--tlskey="{store_path}/certs/key.pem"\n-H=tcp://127.0.0.1:{p1}\n')
    assert cli("url", "n1").out == f"tcp://127.0.0.1:{p1}\n"
    assert cli("ip", "n2").out == "127.0.0.2\n"
    assert cli("ip", "n1", "n2").out == "127.0.0.1\n127.0.0.2\n"
    data = json.loads(cli("inspect", "n1").out)
    assert data["DriverName"] == "none" and data["HostOptions"]["AuthOptions"]["StorePath"].endswith("machines/n1")
    assert cli("inspect", "-f", "{{.Driver.URL}}", "n1").out == f"tcp://127.0.0.1:{p1}\n"
    assert cli("inspect", "-f", "{{json .HostOptions.EngineOptions.TlsVerify}}", "n1").out == "true\n"
    assert cli("status", "n1").out == "Running\n"


def test_env_check_reports_unreachable_engine(cli, two_machines):
    r = cli("env", "--check", "--shell", "bash", "n1")
    assert r.code != 0 and "refused" in r.err and r.out == ""


def test_active_and_use(cli, two_machines, monkeypatch):
    p1, _ = two_machines
    assert cli("active").code != 0
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{p1}")
    assert cli("active").out == "n1\n"
    monkeypatch.delenv("DOCKER_HOST")
    assert cli("use", "n2").code == 0
    from machine import clientconfig

    assert clientconfig.current_context() == "n2"
    assert cli("active").out == "n2\n"
    assert "*" in [ln.split()[1] for ln in cli("ls").out.splitlines() if ln.startswith("n2")]


def test_default_machine_gets_a_prefixed_context(cli):
    assert cli("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "default").code == 0
    from machine import clientconfig

    assert clientconfig.context_exists("machine-default")
    assert cli("env", "--shell", "sh").out.count("DOCKER_MACHINE_NAME=\"default\"") == 1
    assert cli("use", "default").code == 0
    assert cli("active").out == "default\n"
    assert cli("rm", "-y", "default").code == 0
    assert not clientconfig.context_exists("machine-default")


def test_rm_removes_record_and_context(cli, store_path, two_machines):
    from machine import clientconfig

    assert cli("use", "n1").code == 0
    r = cli("rm", "-y", "n1")
    assert r.code == 0 and "Successfully removed n1" in r.out
    assert not (store_path / "machines/n1").exists()
    assert not clientconfig.context_exists("n1")
    assert clientconfig.current_context() in (None, "default")
    assert cli("ls", "-q").out == "n2\n"
    again = cli("rm", "-y", "n1")
    assert again.code != 0 and "does not exist" in again.err


def test_rm_asks_first(cli, monkeypatch, two_machines):
    import click

    monkeypatch.setattr(click, "confirm", lambda *a, **k: False)
    assert cli("rm", "n1").code == 0
    assert "n1" in cli("ls", "-q").out


def test_corrupt_record_is_listed_alone_and_removable(cli, store_path, two_machines):
    (store_path / "machines/n1/config.json").write_text("{broken")
    r = cli("ls")
    assert r.code == 0
    rows = {ln.split()[0]: ln for ln in r.out.splitlines()[1:]}
    assert "unreadable" in rows["n1"] and "Error" in rows["n1"]
    assert "none" in rows["n2"]
    assert cli("env", "n1").code != 0
    assert cli("rm", "-y", "n1").code != 0
    assert cli("rm", "-y", "-f", "n1").code == 0
    assert cli("ls", "-q").out == "n2\n"


@pytest.mark.parametrize("args,needle", [
    (["create", "-d", "none", "--url", "tcp://127.0.0.1:9", "bad_name"], "invalid machine name"),
    (["create", "-d", "nosuchdriver", "x1"], "unknown driver 'nosuchdriver'"),
    (["create", "x1"], "no driver given"),
    (["create", "-d", "none", "x1"], "needs the engine's address"),
    (["create", "-d", "none", "--url", "http//nope", "x1"], "invalid --url"),
    (["env", "ghost"], 'Docker machine "ghost" does not exist'),
    (["inspect", "ghost"], "does not exist"),
    (["url", "ghost"], "does not exist"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["ls", "--format", "{{.Nope}}"], "can't evaluate field Nope"),
    (["create", "-d", "none", "--url", "tcp://127.0.0.1:9", "--tls-ca-cert", "/nonexistent.pem", "x1"], "--tls-ca-key"),
    (["start", "ghost"], "does not exist"),
    (["create", "-d", "none", "--url", "tcp://127.0.0.1:9", "--engine-label", "novalue", "x1"], "KEY=VALUE"),
])
def test_bad_input_is_one_line_no_traceback(cli, store_path, args, needle):
    r = cli(*args)
    assert r.code != 0
    assert needle in r.err, r
    assert "Traceback" not in r.err
    errors = [ln for ln in r.err.strip().splitlines() if not ln.startswith("(x1) ")]  # progress lines aside
    assert len(errors) == 1 and errors[0].startswith("Error: "), r.err
    # nothing half-made is left behind by a failed create
    if args[0] == "create":
        assert not (store_path / "machines" / "x1").exists()


def test_duplicate_create_refused(cli, two_machines):
    r = cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "n1")
    assert r.code != 0 and "already exists" in r.err


def test_none_cannot_stop(cli, two_machines):
    r = cli("stop", "n1")
    assert r.code != 0 and "cannot stop" in r.err


def test_debug_shows_traceback(machine_bin):
    r = machine_bin("--debug", "env", "ghost")
    assert r.code != 0 and "Traceback" in r.err and "does not exist" in r.err
    r = machine_bin("env", "ghost")
    assert r.code != 0 and "Traceback" not in r.err


def test_create_help_lists_driver_flags(machine_bin):
    r = machine_bin("create", "-d", "none", "--help")
    assert r.code == 0 and "--url" in r.out
    r = machine_bin("create", "--help")
    assert "Drivers:" in r.out and "none" in r.out


def test_storage_path_flag(cli, tmp_path):
    other = tmp_path / "other"
    assert cli("-s", str(other), "create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "o1").code == 0
    assert (other / "machines/o1/config.json").exists()
    assert cli("-s", str(other), "ls", "-q").out == "o1\n"
    assert cli("ls", "-q").out == ""


@pytest.mark.skipif(not __import__("shutil").which("qemu-system-x86_64"), reason="qemu not installed")
@pytest.mark.parametrize("args,needle", [
    (["--qemu-image", "/nonexistent/disk.qcow2"], "image not found"),
    (["--qemu-memory", "8"], "--qemu-memory"),
    (["--qemu-accel", "hvf"], "hvf"),
])
def test_qemu_bad_input_through_the_cli(cli, store_path, args, needle):
    r = cli("create", "-d", "qemu", *args, "x1")
    assert r.code != 0 and needle in r.err and "Traceback" not in r.err, r
    assert [ln for ln in r.err.splitlines() if ln.startswith("Error: ")].__len__() == 1
    assert not (store_path / "machines/x1").exists()
    assert cli("ls", "-q").out == ""


def test_driver_options_of_an_earlier_create_do_not_linger(cli, store_path):
    """Two drivers with a field of the same name (zone) in one process: each gets its own flags."""
    r1 = cli("create", "-d", "qemu", "--help")
    r2 = cli("create", "-d", "openstack", "--help")
    assert r1.code == r2.code == 0
    assert "--qemu-memory" in r1.out and "--openstack-flavor-name" in r2.out
    assert "--qemu-memory" not in r2.out
