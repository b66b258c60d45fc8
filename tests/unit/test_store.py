"""The store: atomic writes, locks, modes, isolation of broken records, concurrency."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from machine import fsutil
from machine.errors import NotFound, UsageError
from machine.model import Host
from machine.store import CorruptRecord, Store, validate_name


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_write_leaves_old_file_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    fsutil.atomic_write(target, "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        fsutil.atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"], "temp file must be cleaned up"


def test_atomic_write_private_mode_from_the_start(tmp_path, monkeypatch):
    seen = {}
    real_replace = os.replace

    def spy(src, dst):
        seen["mode"] = mode(src)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    fsutil.atomic_write(tmp_path / "key.pem", b"secret", mode=0o600)
    assert seen["mode"] == 0o600
    assert mode(tmp_path / "key.pem") == 0o600


@pytest.mark.parametrize("name", ["a", "node-1", "web.example.com", "A1", "x" * 60])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-lead", ".dot", "under_score", "sp ace", "slash/x", "ü", "a" * 254])
def test_invalid_names(name):
    with pytest.raises(UsageError) as e:
        validate_name(name)
    assert "invalid machine name" in str(e.value)


def test_save_load_roundtrip_and_modes(store_path):
    s = Store(store_path)
    s.reserve("n1")
    h = Host(name="n1", driver_name="none", driver={"URL": "tcp://127.0.0.1:2376", "IPAddress": "127.0.0.1"})
    h.auth.ca_cert_path = str(store_path / "certs" / "ca.pem")
    h.driver.store_path = str(store_path)
    s.save(h)
    assert mode(s.machine_dir("n1")) == 0o700
    assert mode(s.config_path("n1")) == 0o600 and mode(s.machine_dir("n1") / "machine.json") == 0o600
    raw = json.loads(s.config_path("n1").read_text())
    # absolute paths, as docker-machine writes and reads them (a moved store is rebased on read)
    assert raw["HostOptions"]["AuthOptions"]["CaCertPath"] == str(store_path / "certs" / "ca.pem")
    assert "Machine" not in raw and "Port" not in raw["HostOptions"]["EngineOptions"]
    back = s.load("n1")
    assert back.auth.ca_cert_path == str(store_path / "certs" / "ca.pem")
    assert back.driver.to_record()["URL"] == "tcp://127.0.0.1:2376" and back.ip == "127.0.0.1"


def test_moved_store_still_resolves(store_path, tmp_path):
    s = Store(store_path)
    s.reserve("n1")
    h = Host(name="n1", driver_name="none")
    h.auth.ca_cert_path = str(store_path / "certs" / "ca.pem")
    h.auth.store_path = str(store_path / "machines" / "n1")
    h.auth.client_cert_path = "/etc/elsewhere/cert.pem"   # outside the store: left as it is
    h.driver.store_path = str(store_path)
    s.save(h)
    moved = tmp_path / "elsewhere"
    os.rename(store_path, moved)
    back = Store(moved).load("n1")
    assert back.auth.ca_cert_path == str(moved / "certs" / "ca.pem")
    assert back.auth.store_path == str(moved / "machines" / "n1") and back.driver.store_path == str(moved)
    assert back.auth.client_cert_path == "/etc/elsewhere/cert.pem"


def test_records_of_the_older_layout_migrate_on_write(store_path):
    """Our earlier versions wrote store-relative paths and kept our data in config.json's "Machine"."""
    d = store_path / "machines" / "old"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({
        "ConfigVersion": 3, "Name": "old", "DriverName": "none",
        "Driver": {"URL": "tcp://127.0.0.1:2376", "StorePath": "."},
        "HostOptions": {"AuthOptions": {"CaCertPath": "certs/ca.pem", "StorePath": "machines/old"},
                        "EngineOptions": {"Port": 2376, "InstallStrategy": "script"}},
        "Machine": {"Phase": "ready", "Journal": [{"kind": "x", "id": "1"}]}}))
    s = Store(store_path)
    h = s.load("old")
    assert h.auth.ca_cert_path == str(store_path / "certs" / "ca.pem") and h.driver.store_path == str(store_path)
    assert h.machine.journal == [{"kind": "x", "id": "1"}] and h.engine.install == "script"
    s.save(h)
    raw = json.loads((d / "config.json").read_text())
    own = json.loads((d / "machine.json").read_text())
    assert raw["HostOptions"]["AuthOptions"]["CaCertPath"] == str(store_path / "certs" / "ca.pem")
    assert "Machine" not in raw and own["Machine"]["Journal"] == [{"kind": "x", "id": "1"}]
    assert own["EngineOptions"]["InstallStrategy"] == "script"


def test_unknown_fields_survive_a_rewrite(store_path):
    s = Store(store_path)
    s.reserve("n1")
    (s.machine_dir("n1") / "config.json").write_text(json.dumps({
        "ConfigVersion": 3, "Name": "n1", "DriverName": "none", "Driver": {"URL": "tcp://1.2.3.4:2376", "Odd": 1},
        "HostOptions": {"Memory": 0, "FutureThing": {"a": 1}, "EngineOptions": {"Weird": True}},
        "SomethingNew": [1, 2],
    }))
    s.save(s.load("n1"))
    raw = json.loads(s.config_path("n1").read_text())
    assert raw["SomethingNew"] == [1, 2]
    assert raw["HostOptions"]["FutureThing"] == {"a": 1}
    assert raw["HostOptions"]["EngineOptions"]["Weird"] is True
    assert raw["Driver"]["Odd"] == 1


def test_reserve_twice_fails(store_path):
    s = Store(store_path)
    s.reserve("n1")
    with pytest.raises(UsageError, match="already exists"):
        s.reserve("n1")


def test_missing_and_corrupt_records(store_path):
    s = Store(store_path)
    with pytest.raises(NotFound):
        s.load("ghost")
    s.reserve("good")
    s.save(Host(name="good", driver_name="none"))
    s.reserve("bad")
    (s.machine_dir("bad") / "config.json").write_text("{not json")
    s.reserve("empty")
    with pytest.raises(CorruptRecord, match="unreadable"):
        s.load("bad")
    results = dict(s.load_all())
    assert isinstance(results["good"], Host)
    assert isinstance(results["bad"], CorruptRecord)
    assert isinstance(results["empty"], CorruptRecord)


def test_store_lock_excludes_other_processes(store_path):
    s = Store(store_path)
    code = (
        "import sys; from machine.store import Store; from machine.errors import MachineError\n"
        f"s = Store({str(store_path)!r})\n"
        "try:\n"
        "    with s.lock('n1', timeout=0.2): print('got')\n"
        "except MachineError as e: print('busy', e)\n"
    )
    with s.lock("n1"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("busy"), out
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("got"), out


def test_concurrent_creates_end_with_one_ca(store_path):
    """Six separate processes create machines at once: one CA, every record intact."""
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store_path))
    procs = [
        subprocess.Popen([sys.executable, "-m", "machine", "create", "-q", "-d", "none", "--url",
                          f"tcp://127.0.0.1:{20000 + i}", f"c{i}"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(6)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    s = Store(store_path)
    assert sorted(os.listdir(store_path / "certs")) == ["ca-key.pem", "ca.pem", "cert.pem", "key.pem"]
    from machine import certs

    ca = store_path / "certs" / "ca.pem"
    for name, host in s.load_all():
        assert isinstance(host, Host), host
        # each machine's copy of the CA and client cert is the one CA's
        assert (s.machine_dir(name) / "ca.pem").read_bytes() == ca.read_bytes()
        certs.verify_chain(ca, s.machine_dir(name) / "cert.pem")
        assert mode(s.machine_dir(name) / "key.pem") == 0o600
    assert len(s.names()) == 6
    assert mode(store_path / "certs" / "ca-key.pem") == 0o600
    assert mode(store_path / "certs") == 0o700


# ---- the store is untrusted input ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["invalid-utf8", "deep-nesting", "directory", "int-name", "fifo", "dev-zero",
                                  "huge", "list", "driver-not-object", "symlink-out"])
def test_one_bad_record_is_reported_alone(store_path, cli, kind, tmp_path):
    assert cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "good").code == 0
    bad = store_path / "machines" / "bad"
    bad.mkdir(parents=True)
    cfg = bad / "config.json"
    if kind == "invalid-utf8":
        cfg.write_bytes(b'{"Name": "\xff\xfe"}')
    elif kind == "deep-nesting":
        cfg.write_text("[" * 100000 + "]" * 100000)
    elif kind == "directory":
        cfg.mkdir()
    elif kind == "int-name":
        cfg.write_text('{"Name": 7, "DriverName": "none"}')
    elif kind == "fifo":
        os.mkfifo(cfg)
    elif kind == "dev-zero":
        cfg.symlink_to("/dev/zero")
    elif kind == "huge":
        cfg.write_text('{"Name": "bad", "x": "' + "a" * (5 * 1024 * 1024) + '"}')
    elif kind == "list":
        cfg.write_text("[]")
    elif kind == "driver-not-object":
        cfg.write_text('{"Name": "bad", "DriverName": "none", "Driver": "oops"}')
    elif kind == "symlink-out":
        outside = tmp_path / "outside.json"
        outside.write_text('{"Name": "bad", "DriverName": "none"}')
        cfg.symlink_to(outside)
    r = cli("ls", "-t", "1")
    assert r.code == 0 and "Traceback" not in r.err
    rows = {ln.split()[0]: ln for ln in r.out.splitlines()[1:]}
    assert set(rows) == {"bad", "good"} and "Error" in rows["bad"]
    for verb in (["env", "--shell", "bash", "bad"], ["inspect", "bad"], ["url", "bad"]):
        r = cli(*verb)
        assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "unexpected" not in r.err, (verb, r.err)
    r = cli("rm", "-f", "bad")
    assert r.code == 0, r.err
    assert not os.path.lexists(bad) and cli("ls", "-q").out == "good\n"


def test_rm_of_a_planted_symlink_removes_the_link_not_its_target(store_path, cli, tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "config.json").write_text('{"Name": "evil", "DriverName": "none"}')
    (target / "data.txt").write_text("keep me")
    (store_path / "machines").mkdir(parents=True)
    (store_path / "machines" / "evil").symlink_to(target, target_is_directory=True)
    r = cli("rm", "-y", "evil")
    assert r.code == 1 and "rm -f" in r.err
    assert cli("rm", "-f", "evil").code == 0
    assert not os.path.lexists(store_path / "machines" / "evil")
    assert (target / "data.txt").read_text() == "keep me" and (target / "config.json").exists()
    # and create refuses the name while something is planted there
    (store_path / "machines" / "evil").symlink_to(target, target_is_directory=True)
    r = cli("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "evil")
    assert r.code == 1 and "already exists" in r.err and (target / "data.txt").exists()


def test_unwritable_store_is_one_line(tmp_path, machine_bin):
    store = tmp_path / "afile"
    store.write_text("not a folder")
    r = machine_bin("-s", str(store), "create", "-d", "none", "--url", "tcp://127.0.0.1:9", "x")
    assert r.code == 1 and len(r.err.strip().splitlines()) <= 4 and "unexpected" not in r.err and \
        "Traceback" not in r.err, r.err
