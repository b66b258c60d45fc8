"""End to end on the Azure emulator: `machine create -d azure` goes on to provision a real engine.

Emulator, not Azure. The emulator gives the VM's public IP 127.40.0.2 (loopback); the test
gateway (tests/harness/gateway.py) makes 127.40.0.2:22 and :2376 reach the session's pooled
QEMU VM (engine image), and a stand-in for the Azure guest agent creates the admin user the
API was given (docker-user, Azure refuses root) with the key from the VM's osProfile. So
create runs for real through the CLI: ARM calls → public address → SSH as a sudo user →
host key pinned → TLS on 2376 with 127.40.0.2 in the server certificate → docker context;
then stop (deallocate) / start (re-provisioned) / rm, and nothing is left in the emulator.

Run (after the fast tier; boots a VM):
    flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_azure_e2e.py -x -q
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

pytest.importorskip("azure.mgmt.compute")

from emulators.fixtures import azure_emu, azure_env, azure_flags  # noqa: E402,F401
from emulators.standin import GuestAgentStandIn  # noqa: E402
from harness.gateway import Gateway  # noqa: E402

pytestmark = [pytest.mark.vm]
ADDRESS = "127.40.0.2"      # the emulator's first public IP
NAME = "az-e2e"


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


def _vm_key(emu):
    def find():
        with emu.lock:
            for r in emu.resources.values():
                if r["type"] == "Microsoft.Compute/virtualMachines" and r["name"] == NAME:
                    p = r["properties"]["osProfile"]
                    return p["adminUsername"], p["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"]
        return None
    return find


def test_create_provisions_through_azure(azure_emu, azure_env, shared_vm, gateway, machine_bin, store_path):
    agent = GuestAgentStandIn(shared_vm, _vm_key(azure_emu), on_ready=gateway.start)
    agent.start()
    try:
        t0 = time.monotonic()
        r = machine_bin("create", "-d", "azure", *azure_flags(azure_emu), "--ssh-timeout", "300", NAME, timeout=900)
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
        start = machine_bin("start", NAME, timeout=600)   # re-provisions: the address may have changed
        assert start.code == 0, start.err
        assert machine_bin("status", NAME).out.strip() == "Running"
        print(f"\nazure e2e: create+provision {took:.0f}s, engine {v.stdout.strip()}")
    finally:
        agent.done.set()
        rm = machine_bin("rm", "-y", NAME, timeout=300)
    assert rm.code == 0, rm.err
    azure_emu.settle()
    assert azure_emu.owned() == []
