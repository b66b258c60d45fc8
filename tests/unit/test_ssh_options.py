"""`machine ssh NAME [SSH-OPTIONS] COMMAND`: options go to OpenSSH as docker-machine passes them,
with the machine's pinned known_hosts; --native-ssh takes the harmless ones itself.
Against a real sshd on loopback (the fixture of test_ssh.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_ssh import Sshd, keygen  # noqa: E402  (the real sshd on loopback)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd")
                                or shutil.which("ssh") is None, reason="needs root, sshd and ssh")


@pytest.fixture
def sshd(tmp_path):
    (tmp_path / "sshd").mkdir(exist_ok=True)
    d = Sshd(tmp_path / "sshd")
    d.start()
    yield d
    d.stop()


@pytest.fixture
def machine_m1(sshd, tmp_path):
    from machine.model import Host
    from machine.store import Store

    store = Store(tmp_path / "store")
    store.reserve("m1")
    store.save(Host(name="m1", driver_name="generic",
                    driver={"IPAddress": "127.0.0.1", "SSHPort": sshd.port, "SSHUser": "root",
                            "SSHKeyPath": str(sshd.client_key)}))
    return store


def run(store, *args):
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store.path))
    return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_options_before_the_command_go_to_openssh(machine_m1):
    assert run(machine_m1, "ssh", "m1", "--", "true").returncode == 0  # first contact pins the key (native)
    r = run(machine_m1, "ssh", "m1", "-C", "echo", "foo")
    assert r.returncode == 0 and r.stdout == "foo\n", r
    r = run(machine_m1, "ssh", "m1", "-o", "ConnectTimeout=5", "-T", "--", "sh", "-c", "'exit 3'")
    assert r.returncode == 3, r


def test_native_client_takes_harmless_options_and_refuses_the_rest(machine_m1):
    assert run(machine_m1, "ssh", "m1", "--", "true").returncode == 0
    r = run(machine_m1, "--native-ssh", "ssh", "m1", "-C", "echo", "foo")
    assert r.returncode == 0 and r.stdout == "foo\n", r
    r = run(machine_m1, "--native-ssh", "ssh", "m1", "-L", "8080:localhost:80", "true")
    assert r.returncode == 1 and "does not support -L 8080:localhost:80" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_openssh_refuses_a_changed_host_key(machine_m1, sshd):
    assert run(machine_m1, "ssh", "m1", "--", "true").returncode == 0
    kh = machine_m1.machine_dir("m1") / "known_hosts"
    text = kh.read_text()
    keygen(machine_m1.path.parent / "impostor")  # another key: not the host's
    kh.write_text(text.replace(text.split()[2], (machine_m1.path.parent / "impostor.pub").read_text().split()[1]))
    r = run(machine_m1, "ssh", "m1", "-C", "echo", "foo")
    assert r.returncode != 0 and "foo" not in r.stdout


def test_scp_machine_to_machine(machine_m1, sshd, tmp_path):
    """NAME1:PATH NAME2:PATH (docker-machine copies through the client); both records point at the
    fixture's sshd, so 'remote' paths are paths of this host."""
    from machine.model import Host

    machine_m1.reserve("m2")
    machine_m1.save(Host(name="m2", driver_name="generic",
                         driver={"IPAddress": "127.0.0.1", "SSHPort": sshd.port, "SSHUser": "root",
                                 "SSHKeyPath": str(sshd.client_key)}))
    src = tmp_path / "from-m1"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "sub").mkdir()
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    dst = tmp_path / "on-m2"
    for m in ("m1", "m2"):
        assert run(machine_m1, "ssh", m, "--", "true").returncode == 0  # pin both host keys
    r = run(machine_m1, "scp", "-r", f"m1:{src}", f"m2:{dst}")
    assert r.returncode == 0, r.stderr
    assert (dst / "a.txt").read_text() == "alpha\n"
    assert (dst / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 100
