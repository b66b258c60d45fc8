"""End to end on vcsim: `machine create -d vsphere` goes on to provision a real engine.

vcsim clones, reconfigures and powers VMs but boots nothing. The clone is told its address with
docker-machine's own flag, `--vsphere-cfgparam SET.guest.ipAddress=127.30.0.5`, so vcsim's guest
tools report a loopback address; the test gateway (tests/harness/gateway.py) makes 127.30.0.5:22
and :2376 reach the session's pooled VM (QEMU, engine image), and a watcher plays cloud-init's
part: it reads the user-data the driver put in the clone's guestinfo (through vSphere, as the
guest would) and installs the SSH key it carries on that VM. So create runs for real: clone →
reconfigure → power on → address from guest tools → SSH to 127.30.0.5 → host key pinned → OS
facts → TLS on 2376 with 127.30.0.5 in the server certificate → verified → docker context.

Measured here (2 shared cores, TCG, busy host): pooled VM SSH after 150 s, create + provision
185 s, 340 s for the module.

Run (after the fast tiers; boots a VM):
    flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_vsphere_e2e.py -x -q
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time

import pytest

from harness.gateway import Gateway
from vsphere.fixtures import vcsim, vsphere_env  # noqa: F401
from vsphere.vcsim_harness import TEMPLATE, find

pytestmark = [pytest.mark.vm, pytest.mark.vsphere, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
ADDRESS = "127.30.0.5"
NAME = "vs-e2e"


def _keys_from_user_data(text: str) -> list[str]:
    """What cloud-init would authorize: ssh_authorized_keys of the #cloud-config part(s)."""
    keys: list[str] = []
    docs = []
    if text.startswith("#cloud-config"):
        docs.append(text)
    else:                                   # multipart (the user's own cloud-init alongside ours)
        import email

        for part in email.message_from_string(text).walk():
            if part.get_content_type() == "text/cloud-config":
                docs.append(part.get_payload(decode=True).decode())
    for d in docs:
        doc = json.loads(d.split("\n", 1)[1])
        keys += doc.get("ssh_authorized_keys", [])
        for u in doc.get("users", []):
            if isinstance(u, dict):
                keys += u.get("ssh_authorized_keys", [])
    return keys


class CloudInitStandIn(threading.Thread):
    """Waits for the clone in vcsim, reads its guestinfo.userdata and authorizes its key on the VM."""

    def __init__(self, sim, vm, name: str, on_ready=lambda: None):
        super().__init__(daemon=True)
        self.sim, self.vm, self.name, self.on_ready = sim, vm, name, on_ready
        self.keys: list[str] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self):
        from pyVmomi import vim

        try:
            si = self.sim.connect()
            end = time.monotonic() + 300
            while time.monotonic() < end and not self.done.is_set():
                found = find(si, vim.VirtualMachine, self.name)
                if found and found[0].runtime.powerState == "poweredOn":
                    extra = {o.key: o.value for o in found[0].config.extraConfig}
                    if "guestinfo.userdata" in extra:
                        assert extra.get("guestinfo.userdata.encoding") == "base64"
                        self.keys = _keys_from_user_data(base64.b64decode(extra["guestinfo.userdata"]).decode())
                        for key in self.keys:
                            rc, out, err = self.vm.run(
                                "install -d -m 700 /root/.ssh && printf '%s\\n' " + _sh(key) +
                                " >> /root/.ssh/authorized_keys")
                            assert rc == 0, err
                        self.on_ready()  # the guest's sshd answers once cloud-init has run
                        return
                time.sleep(0.5)
            raise TimeoutError(f"no powered-on VM {self.name} with guestinfo.userdata in vcsim")
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.done.set()


def _sh(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.fixture
def gateway(shared_vm):
    """Not yet listening: like a booting guest's sshd, the address refuses connections until the
    cloud-init stand-in has authorized the key (it starts the gateway)."""
    c = shared_vm.driver.config
    gw = Gateway([{22: c.ssh_port, 2376: c.engine_port}], addresses=[ADDRESS])
    try:
        yield gw
    finally:
        gw.stop()


def test_create_provisions_through_vsphere(vsphere_env, shared_vm, gateway, machine_bin, store_path):
    sim = vsphere_env
    watcher = CloudInitStandIn(sim, shared_vm, NAME, on_ready=gateway.start)
    watcher.start()
    args = ["create", "-d", "vsphere", "--vsphere-vcenter", sim.host, "--vsphere-vcenter-port", str(sim.port),
            "--vsphere-ca-cert", sim.cert_file, "--vsphere-clone-from", TEMPLATE, "--vsphere-disk-size", "2048",
            "--vsphere-cfgparam", f"SET.guest.ipAddress={ADDRESS}", "--vsphere-ssh-user", "root",
            "--ssh-timeout", "300", NAME]
    try:
        t0 = time.monotonic()
        r = machine_bin(*args, timeout=900)
        took = time.monotonic() - t0
        watcher.done.set()
        watcher.join(10)
        assert watcher.error is None, watcher.error
        assert r.code == 0, r.err
        assert watcher.keys and open(store_path / "machines" / NAME / "id_ed25519.pub").read().strip() in watcher.keys
        assert gateway.connections.get((ADDRESS, 22), 0) >= 1
        assert f"tcp://{ADDRESS}:2376" in r.err or machine_bin("url", NAME).out.strip() == f"tcp://{ADDRESS}:2376"
        v = subprocess.run(["docker", "--context", NAME, "version", "--format", "{{.Server.Version}}"],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert v.returncode == 0 and v.stdout.strip(), v.stderr
        assert gateway.connections.get((ADDRESS, 2376), 0) >= 1
        assert machine_bin("status", NAME).out.strip() == "Running"
        print(f"\nvsphere e2e: create+provision {took:.0f}s, engine {v.stdout.strip()}")
    finally:
        watcher.done.set()
        rm = machine_bin("rm", "-y", NAME, timeout=300)
    assert rm.code == 0, rm.err
    from pyVmomi import vim

    assert find(sim.si, vim.VirtualMachine, NAME) == []
