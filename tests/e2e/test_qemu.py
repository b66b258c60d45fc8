"""End-to-end: real QEMU VMs through the qemu driver (slow: ~1 min per boot under TCG).

Private networks between VMs (addresses, both directions, the switch kept while a member
uses it and gone with the last) are checked on the swarm cluster: tests/e2e/test_cluster_e2e.py.

Run: pytest -m vm tests/e2e/test_qemu.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm


def _qemu_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_cli_create_ssh_stop_start_kill_rm(engine_image, tmp_path_factory, busybox_rootfs):
    """The issue's acceptance path, as a user types it (create provisions the engine over TLS)."""
    from harness.vm import vm_store

    store = vm_store(tmp_path_factory, "clistore")
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store / "docker"))

    def machine(*args, timeout=900):
        return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True,
                              env=env, timeout=timeout)

    name = "cli1"
    mdir = store / "machines" / name
    try:
        r = machine("create", "-d", "qemu", "--qemu-network-mode", "isolated", name)
        assert r.returncode == 0, r.stderr[-2000:]
        # the local docker CLI reaches the engine through the context create wrote
        docker = subprocess.run(["docker", "--context", name, "version", "--format", "{{.Server.Os}}"],
                                capture_output=True, text=True, env=env, timeout=120)
        assert docker.returncode == 0 and docker.stdout.strip() == "linux", docker.stderr
        _audit_flags_exactly_the_bad_container(machine, name, env, busybox_rootfs)
        r = machine("ssh", name, "--", "cat /etc/os-release; echo HOST=$(hostname); df -BG --output=size / | tail -1")
        assert r.returncode == 0 and "Debian" in r.stdout, r.stderr[-2000:]
        assert f"HOST={name}" in r.stdout
        assert int(r.stdout.strip().splitlines()[-1].strip().rstrip("G")) >= 9  # root grew to the 10 GB disk
        files = {p.name for p in mdir.iterdir()}
        assert {"disk.qcow2", "seed.iso", "qemu.pid", "id_ed25519", "known_hosts", "server.pem", "key.pem"} <= files
        assert (mdir / "id_ed25519").stat().st_mode & 0o077 == 0
        ssh_port = json.loads((mdir / "config.json").read_text())["Driver"]["SSHPort"]
        pid = int((mdir / "qemu.pid").read_text())
        assert machine("status", name).stdout.strip() == "Running"

        r = machine("stop", name)
        assert r.returncode == 0, r.stderr[-2000:]
        assert machine("status", name).stdout.strip() == "Stopped"
        assert "Stopped" in machine("ls").stdout
        assert pid not in _qemu_pids()

        r = machine("start", name)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads((mdir / "config.json").read_text())["Driver"]["SSHPort"] == ssh_port, \
            "the same ports again when they are free"
        r = machine("ssh", name, "--", "cat", "/etc/os-release")
        assert r.returncode == 0 and "Debian" in r.stdout, r.stderr[-2000:]
        # start re-verified the engine: env output works for the docker CLI again
        docker = subprocess.run(["bash", "-c", f'eval "$({sys.executable} -m machine env --shell bash {name})" '
                                 '&& docker version --format "{{.Server.Version}}"'],
                                capture_output=True, text=True, env=env, timeout=120)
        assert docker.returncode == 0 and docker.stdout.strip(), docker.stderr

        pid = int((mdir / "qemu.pid").read_text())
        assert machine("kill", name).returncode == 0
        assert machine("status", name).stdout.strip() == "Stopped"
        assert pid not in _qemu_pids()
    finally:
        r = machine("rm", "-y", name)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not mdir.exists()
    assert not any(str(mdir) in _cmdline(p) for p in _qemu_pids())
    ls = machine("ls").stdout.strip().splitlines()
    assert len(ls) == 1 and ls[0].startswith("NAME")


def _audit_flags_exactly_the_bad_container(machine, name, env, rootfs):
    """machine audit: a clean host passes; a privileged root container without limits and with a
    secret in its environment is flagged for exactly those, then passes again once it is gone."""
    def docker(*args, input=None):
        r = subprocess.run(["docker", "--context", name, *args], capture_output=True, env=env, timeout=180,
                           input=input)
        assert r.returncode == 0, r.stderr.decode()[-1000:]
        return r.stdout.decode()

    def audit():
        r = machine("audit", "--format", "json", name, timeout=300)
        return r.returncode, {f["check"]: f["result"] for f in json.loads(r.stdout)}

    code, clean = audit()
    assert code == 0 and "fail" not in clean.values(), clean
    assert clean["engine-tls"] == "pass" and clean["containers"] == "pass"
    docker("import", "-", "busybox:local", input=rootfs)
    docker("run", "-d", "--privileged", "--name", "bad", "-e", "DB_PASSWORD=hunter2", "busybox:local",
           "sleep", "600")
    code, bad = audit()
    assert code == 1
    changed = {k for k in bad if bad[k] != clean.get(k)} - {"containers", "image-provenance"}
    assert changed == {"non-root", "privileged", "memory-limits", "cpu-limits", "secrets-in-env"}, bad
    docker("rm", "-f", "bad")
    docker("run", "-d", "--user", "1000", "--memory", "64m", "--cpus", "0.5", "--name", "good",
           "busybox:local", "sleep", "600")
    code, good = audit()
    assert code == 0 and all(good[k] == "pass" for k in ("non-root", "privileged", "memory-limits",
                                                         "cpu-limits", "secrets-in-env")), good
    docker("rm", "-f", "good")
