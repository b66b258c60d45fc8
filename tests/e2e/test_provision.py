"""End-to-end provisioning on real QEMU VMs (slow: boot ~1–2 min, bundle install 2–3 min under TCG).

Run: pytest -m vm tests/e2e/test_provision.py

test_connection_killed_mid_install_then_provision_completes, on a fresh VM without an engine.
The whole create flow through the CLI is in test_generic_cli.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.vm

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def docker(store, vm, *args, input=None, timeout=180, check=True):
    port = vm.driver.config["EnginePort"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(Path(store.path) / "docker-config")
    p = subprocess.run([DOCKER, "--tlsverify", f"--tlscacert={store.ca_cert()}", f"--tlscert={store.client_cert()}",
                        f"--tlskey={store.client_key()}", "-H", f"tcp://127.0.0.1:{port}", *args],
                       input=input, capture_output=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {p.stderr.decode()}")
    return p.stdout.decode()


def ssh_accepts(vm, since: str) -> int:
    rc, out, err = vm.run(f"journalctl -u ssh.service --since '{since}' --no-pager -o cat | "
                          "grep -c 'Accepted publickey' || true")
    return int(out.strip() or 0)


def guest_now(vm) -> str:
    rc, out, _ = vm.run("date '+%Y-%m-%d %H:%M:%S'")
    return out.strip()


def provision(vm, **kw):
    from machine.provision import provision_host

    steps = []
    t0 = time.monotonic()
    result = provision_host(vm.store, vm.host, vm.driver, on_step=steps.append, **kw)
    vm.save()
    print(f"\n[provision {vm.name}] {time.monotonic() - t0:.1f}s steps={result.step_times} "
          f"changed={result.changed} round_trips={result.round_trips}")
    assert steps == ["wait-ssh", "detect-os", "install-engine", "configure-engine", "start-engine",
                     "verify-engine"]
    return result


def dockerd_pid(vm) -> str:
    return vm.run("systemctl show -p MainPID --value docker.service")[1].strip()


def test_connection_killed_mid_install_then_provision_completes(vm_pool, base_image, bundle_dir):
    from machine.errors import StepFailed

    store = vm_pool.store
    store.ensure_certs()
    vm = vm_pool.create("prov2", image="base")
    try:
        vm.host.engine.install = "bundle"
        vm.host.engine.bundle = str(bundle_dir)
        # a second, independent connection watches for the install and kills the provision's session
        from machine import ssh

        watcher = ssh.connect(vm.driver.ssh_endpoint(), vm.dir / "known_hosts")
        vm.close_ssh()
        killed = threading.Event()

        def kill_when_installing():
            end = time.monotonic() + 600
            while time.monotonic() < end and not killed.is_set():
                r = watcher.run("pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null", check=False)
                if r.exit_status == 0:
                    time.sleep(3)
                    # every sshd session process except the watcher's own (its ancestors)
                    watcher.run("anc=''; p=$$; while [ \"$p\" -gt 1 ]; do anc=\"$anc $p\"; "
                                "p=$(cut -d ' ' -f 4 /proc/$p/stat); done; "
                                "for s in $(pgrep -f 'sshd: root@notty'); do "
                                "case \" $anc \" in *\" $s \"*) ;; *) kill -9 $s ;; esac; done", check=False)
                    killed.set()
                    return
                time.sleep(1)

        t = threading.Thread(target=kill_when_installing, daemon=True)
        t.start()
        watcher_alive = [False]
        with pytest.raises(StepFailed) as ei:
            provision(vm, pin_host_key=False, ssh_deadline_s=120)
        killed.set()
        t.join(10)
        watcher_alive[0] = watcher.run("true", check=False).exit_status == 0
        watcher.close()
        assert ei.value.step == "install-engine", str(ei.value)
        assert "lost" in str(ei.value)

        assert watcher_alive[0], "the watcher must only kill the provision's session"
        r = provision(vm, pin_host_key=False, ssh_deadline_s=120)
        assert r.engine_version.startswith("20.10")
        out = docker(store, vm, "version", "--format", "{{.Server.Version}}")
        assert out.strip() == r.engine_version

        # ---- the same host as a non-root user with sudo: every step goes through sudo -n
        vm.run("useradd -m -s /bin/bash ops && install -d -o ops -m 700 /home/ops/.ssh && "
               "install -o ops -m 600 /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys && "
               "echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops")
        vm.close_ssh()
        vm.host.driver["SSHUser"] = "ops"
        conn = ssh.connect(vm.driver.ssh_endpoint(), vm.dir / "known_hosts")
        try:
            assert conn.run("id -un").stdout.strip() == "ops"
            assert conn.run("id -u", sudo=True).stdout.strip() == "0"
            conn.put(b"secret\n", "/etc/docker/sudo-test.pem", 0o600, sudo=True)
            st = conn.run("stat -c '%a %U' /etc/docker/sudo-test.pem && cat /etc/docker/sudo-test.pem",
                          sudo=True).stdout.split()
            assert st == ["600", "root", "secret"]
            assert conn.run("ls /tmp/.machine-put-* 2>/dev/null | wc -l").stdout.strip() == "0"
        finally:
            conn.close()
        r = provision(vm, pin_host_key=False, ssh_deadline_s=60, regenerate_certs=True)
        assert "engine-restarted" in r.changed and "/etc/docker/server.pem" in r.changed
        assert docker(store, vm, "version", "--format", "{{.Server.Version}}").strip() == r.engine_version
    finally:
        vm_pool.remove("prov2")
