"""`machine create -d generic` against a fresh VM without an engine, through the real CLI.

The VM (our base image: Debian 12, no Docker) comes from the harness; Machine reaches
it as a generic SSH host on its loopback forwards and installs the engine from an
offline bundle. Then, on the host: `eval "$(machine env NAME)" && docker version`,
`docker --context NAME info`, `docker run` of an imported image; the SSH session killed
mid-install fails the create naming the step, and `machine provision` then completes
(all as a non-root user through sudo); the engine refuses a
client without our certificate; the server cert covers every address; a second
`provision` changes nothing and keeps a container running; `regenerate-certs` keeps it
running too; exactly one SSH connection per provision after the SSH wait (sshd's log);
a changed host key is refused, `--debug` shows the fingerprints.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.vm
NAME = "gen1"


@pytest.fixture(scope="module")
def generic_vm(vm_pool, base_image):
    vm = vm_pool.create("generic-target", image="base")
    yield vm
    vm_pool.remove("generic-target")


@pytest.fixture
def env(tmp_path):
    store = tmp_path / "store"
    return dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(tmp_path / "docker"))


def machine(env, *args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def sh(env, script, timeout=180):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


def accepted_since(vm, since):
    rc, out, _ = vm.run(f"journalctl -u ssh.service --since '{since}' --no-pager -o cat | "
                        "grep -c 'Accepted publickey' || true")
    return int(out.strip() or 0)


def guest_now(vm):
    """The guest's clock; the harness's connection is closed so the next check opens exactly one."""
    now = vm.run("date '+%Y-%m-%d %H:%M:%S'")[1].strip()
    vm.close_ssh()
    return now


def test_generic_create_bundle_tls_docker_cli(generic_vm, env, bundle_dir, busybox_rootfs, tmp_path):
    vm = generic_vm
    assert vm.run("command -v dockerd || echo none")[1].strip() == "none", "base image must have no engine"
    cfg = vm.driver.config
    # a non-root user with passwordless sudo: every provisioning step goes through `sudo -n`
    vm.run("useradd -m -s /bin/bash ops && install -d -o ops -m 700 /home/ops/.ssh && "
           "install -o ops -m 600 /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys && "
           "echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops")

    # ---- create; its SSH session is killed while the engine packages install
    killed = threading.Event()

    def kill_when_installing():
        end = time.monotonic() + 900
        while time.monotonic() < end and not killed.is_set():
            if vm.run("pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null")[0] == 0:
                time.sleep(3)
                # [o]: the pattern must not match this very command's shell (it runs as root, in our session)
                vm.run("pkill -9 -f 'sshd: [o]ps@notty'")
                killed.set()
                return
            time.sleep(1)

    watcher = threading.Thread(target=kill_when_installing, daemon=True)
    watcher.start()
    r = machine(env, "create", "-d", "generic", "--generic-ip-address", "127.0.0.1", "--generic-ssh-user", "ops",
                "--generic-ssh-port", str(cfg.ssh_port), "--generic-ssh-key", str(vm.dir / "id_ed25519"),
                "--generic-engine-port", str(cfg.engine_port), "--engine-port", "2376",
                "--engine-bundle", str(bundle_dir), "--engine-label", "e2e=generic", "--keep-on-failure", NAME)
    killed.set()
    watcher.join(30)
    assert r.returncode != 0, "the create must fail when its SSH session dies mid-install"
    error = [ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(error) == 1 and "install-engine" in error[0] and f"machine provision {NAME}" in error[0], r.stderr
    assert "Traceback" not in r.stderr
    ls = machine(env, "ls", "--format", "{{.Name}} {{.Error}}")
    assert ls.stdout.startswith(f"{NAME} ") and "install-engine" in ls.stdout, ls.stdout

    # ---- provision resumes and completes over exactly one SSH connection
    since = guest_now(vm)
    r = machine(env, "--debug", "provision", NAME)  # --debug: a failure shows the install's output
    assert r.returncode == 0, r.stderr[-6000:]
    for step in ("wait-ssh", "detect-os", "install-engine", "configure-engine", "start-engine", "verify-engine"):
        assert step in r.stderr
    # one SSH connection for the whole provision (+1: the harness's own check right now)
    assert accepted_since(vm, since) == 1 + 1
    rc, out, err = vm.run("sudo -u ops sudo -n true")
    assert rc == 0 and "unable to resolve host" not in err, err

    # ---- the host's docker CLI, through env and through the context
    out = sh(env, f'eval "$({sys.executable} -m machine env --shell bash {NAME})" && '
                  'docker version --format "{{.Server.Version}}"')
    assert out.returncode == 0 and out.stdout.strip().startswith("20.10"), out.stderr
    info = sh(env, f"docker --context {NAME} info --format '{{{{json .Labels}}}}'")
    assert info.returncode == 0, info.stderr
    labels = json.loads(info.stdout)
    assert "e2e=generic" in labels and "provider=generic" in labels
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(busybox_rootfs)
    assert sh(env, f"docker --context {NAME} import {rootfs} busybox:e2e").returncode == 0
    run = sh(env, f"docker --context {NAME} run --rm busybox:e2e /bin/echo hello from generic")
    assert run.returncode == 0 and run.stdout.strip() == "hello from generic", run.stderr
    keep = sh(env, f"docker --context {NAME} run -d --name keep busybox:e2e /bin/sleep 3600")
    assert keep.returncode == 0, keep.stderr

    # ---- ls shows it Running with the engine version and cert expiry
    ls = machine(env, "ls", "--format", "{{.Name}} {{.State}} {{.DockerVersion}} {{.CertExpiry}}")
    name, state, version, expiry = ls.stdout.split()
    assert (name, state) == (NAME, "Running") and version.startswith("v20.10") and expiry[:2] == "20"

    # ---- the server certificate covers every address; strangers are refused
    from machine import certs

    store = env["MACHINE_STORAGE_PATH"]
    mdir = f"{store}/machines/{NAME}"
    sans = set(certs.cert_info(f"{mdir}/server.pem").sans)
    assert {"127.0.0.1", NAME} <= sans
    ctx = ssl.create_default_context(cafile=f"{mdir}/ca.pem")  # trusts the server, offers no client cert
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", cfg.engine_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /version HTTP/1.0\r\n\r\n")
                if not tls.recv(1024):
                    raise ConnectionResetError("closed without an answer")

    # ---- provision again: nothing restarts, the container keeps running, one connection
    pid = vm.run("systemctl show -p MainPID --value docker.service")[1].strip()
    since = guest_now(vm)
    r = machine(env, "provision", NAME)
    assert r.returncode == 0, r.stderr[-2000:]
    assert accepted_since(vm, since) == 1 + 1
    assert vm.run("systemctl show -p MainPID --value docker.service")[1].strip() == pid
    running = sh(env, f"docker --context {NAME} inspect -f '{{{{.State.Running}}}}' keep")
    assert running.stdout.strip() == "true"

    # ---- regenerate-certs: new server cert, container still running (live-restore)
    old = certs.cert_info(f"{mdir}/server.pem").fingerprint_sha256
    r = machine(env, "regenerate-certs", "-f", NAME)
    assert r.returncode == 0, r.stderr[-2000:]
    assert certs.cert_info(f"{mdir}/server.pem").fingerprint_sha256 != old
    running = sh(env, f"docker --context {NAME} inspect -f '{{{{.State.Running}}}}' keep")
    assert running.returncode == 0 and running.stdout.strip() == "true", running.stderr

    # ---- the host is re-created behind the same address: its new key is refused
    vm.run("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh.service")
    vm.close_ssh()
    r = machine(env, "--debug", "provision", NAME, timeout=300)
    assert r.returncode != 0
    # refused: the key differs from the pinned one (and from the fingerprint the record holds)
    assert ("changed" in r.stderr or "not the one recorded" in r.stderr) and \
        "machine ssh-keys reset gen1" in r.stderr, r.stderr[-2000:]
    assert r.stderr.count("SHA256:") >= 2, r.stderr[-2000:]  # both fingerprints under --debug
    r = machine(env, "ssh", NAME, "--", "true")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    # accepting the new key deliberately, then everything works again
    assert machine(env, "ssh-keys", "reset", NAME).returncode == 0
    r = machine(env, "provision", NAME)
    assert r.returncode == 0, r.stderr[-2000:]

    # ---- rm: record and context gone, the server itself is not ours to delete
    assert machine(env, "rm", "-y", NAME).returncode == 0
    assert not os.path.exists(mdir)
    assert sh(env, f"docker context inspect {NAME}").returncode != 0
    from machine.engineapi import port_open

    assert port_open("127.0.0.1", cfg.ssh_port), "rm of a generic machine must leave the server running"
