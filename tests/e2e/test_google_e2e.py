"""End to end on the Compute Engine emulator: `machine create -d google` goes on to provision a real engine.

Emulator, not Google Cloud. The emulator gives the instance the external address 127.50.0.2
(loopback); the test gateway makes 127.50.0.2:22 and :2376 reach the session's pooled QEMU
VM (engine image), and a stand-in for the guest agent creates the user named in the
instance's ssh-keys metadata with its key and sudo. So create runs for real through the
CLI: Compute calls → external address → SSH → host key pinned → TLS on 2376 → docker
context; then stop / start (re-provisioned) / rm, and nothing is left in the emulator.

Run (after the fast tier; boots a VM):
    flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_google_e2e.py -x -q
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

pytest.importorskip("google.cloud.compute_v1")

from emulators.fixtures import google_emu, google_env, google_flags, google_key  # noqa: E402,F401
from emulators.standin import GuestAgentStandIn  # noqa: E402
from harness.gateway import Gateway  # noqa: E402

pytestmark = [pytest.mark.vm]
ADDRESS = "127.50.0.2"      # the emulator's first external address
NAME = "gce-e2e"


@pytest.fixture
def gateway(shared_vm):
    """Not yet listening: the address refuses connections, as a booting guest does, until the
    guest-agent stand-in has put the key in place (it starts the gateway)."""
    c = shared_vm.driver.config
    gw = Gateway([{22: c.ssh_port, 2376: c.engine_port}], addresses=[ADDRESS])
    try:
        yield gw
    finally:
        gw.stop()


def _instance_key(emu):
    def find():
        with emu.lock:
            inst = emu.instances.get(f"machine-test/us-central1-a/{NAME}")
            if inst is None:
                return None
            items = {i["key"]: i["value"] for i in inst.get("metadata", {}).get("items", [])}
            user, _, key = items["ssh-keys"].partition(":")
            return user, key
    return find


def test_create_provisions_through_google(google_emu, google_env, shared_vm, gateway, machine_bin, store_path):
    agent = GuestAgentStandIn(shared_vm, _instance_key(google_emu), on_ready=gateway.start)
    agent.start()
    try:
        t0 = time.monotonic()
        r = machine_bin("create", "-d", "google", *google_flags(google_emu), "--ssh-timeout", "300", NAME,
                        timeout=900)
        took = time.monotonic() - t0
        agent.join(10)
        assert agent.error is None, agent.error
        assert r.code == 0, r.err
        assert agent.user == "docker-user"
        assert gateway.connections.get((ADDRESS, 22), 0) >= 1
        assert machine_bin("url", NAME).out.strip() == f"tcp://{ADDRESS}:2376"
        v = subprocess.run(["docker", "--context", NAME, "version", "--format", "{{.Server.Version}}"],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert v.returncode == 0 and v.stdout.strip(), v.stderr
        assert gateway.connections.get((ADDRESS, 2376), 0) >= 1
        assert machine_bin("status", NAME).out.strip() == "Running"
        ls = machine_bin("ls")
        assert NAME in ls.out and "Running" in ls.out, ls.out

        assert machine_bin("stop", NAME).code == 0
        assert machine_bin("status", NAME).out.strip() == "Stopped"
        start = machine_bin("start", NAME, timeout=600)
        assert start.code == 0, start.err
        assert machine_bin("status", NAME).out.strip() == "Running"
        print(f"\ngoogle e2e: create+provision {took:.0f}s, engine {v.stdout.strip()}")
    finally:
        agent.done.set()
        rm = machine_bin("rm", "-y", NAME, timeout=300)
    assert rm.code == 0, rm.err
    google_emu.settle()
    assert google_emu.owned() == []
