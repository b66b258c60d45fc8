"""The virtualbox driver through its one runner, against the stand-in VBoxManage on PATH
(tests/virtualbox/bin/VBoxManage): real subprocesses, argv quoting, exit codes, stderr, slow
commands; the driver's create, power and remove; the errors users meet, one line each, nothing left.
VirtualBox itself cannot run here: this is not a running VirtualBox."""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from machine.driver import Claims, DriverContext, Journal
from machine.drivers.qemu import seed
from machine.drivers.virtualbox import VirtualBoxConfig, VirtualBoxDriver
from machine.drivers.virtualbox.runner import Runner, VBoxError
from machine.errors import MachineError, NotFound, UsageError
from machine.model import State
from virtualbox.standin import FIXTURES, no_vboxmanage, vbox, vbox_image  # noqa: F401

OK_CIDR = "192.168.56.1/24"     # inside VirtualBox 6.1.28+'s default allowed range


def make(tmp_path, image, name="vb1", peers=(), **over):
    values = {"image": str(image), "hostonly_cidr": OK_CIDR, "no_share": True, "stop_timeout": 1}
    values.update(over)
    cfg = VirtualBoxConfig.from_options(values, driver_name="virtualbox", machine_name=name, environ={})
    mdir = tmp_path / "machines" / name
    mdir.mkdir(parents=True, exist_ok=True)
    base = DriverContext.scratch(name, mdir, root=tmp_path / "store")
    lines = []
    ctx = DriverContext(machine_name=name, machine_dir=mdir, cache_dir=tmp_path / "cache",
                        shared_dir=tmp_path / "shared", journal=Journal(), lock=base.lock,
                        peer_claims=lambda: list(peers), report=lines.append)
    d = VirtualBoxDriver(cfg, ctx)
    d.lines = lines
    return d


# ---- the runner at the subprocess edge -----------------------------------------------------------

def test_argv_reaches_vboxmanage_unquoted(vbox, tmp_path):
    r = Runner()
    name = "it's a \"box\"; rm -rf / $(x) `y`"
    out = r.run("createvm", "--name", name, "--basefolder", str(tmp_path / "vms dir"), "--register")
    assert "UUID:" in out
    assert vbox.log()[-1][2] == name                          # one argv element, byte for byte
    from machine.drivers.virtualbox import parse

    assert name in parse.list_vms(r.run("list", "vms"))


def test_exit_code_and_stderr(vbox):
    r = Runner()
    with pytest.raises(VBoxError) as e:
        r.run("showvminfo", "nope", "--machinereadable")
    assert e.value.code == 1 and "VBOX_E_OBJECT_NOT_FOUND" in e.value.stderr
    assert str(e.value) == "VBoxManage showvminfo nope failed: Could not find a registered machine named 'nope'"
    res = r.result("showvminfo", "nope", check=False)
    assert res.code == 1 and res.stdout == ""


def test_slow_command_deadline(vbox):
    vbox.sleep("list", 5)
    with pytest.raises(MachineError) as e:
        Runner(timeout=0.5).run("list", "vms")
    assert str(e.value).startswith("VBoxManage list did not finish in 0s") or "did not finish in 1s" in str(e.value)


def test_locked_session_is_retried(vbox):
    vbox.fault("list", fixture="stderr-locked.txt", times=2)
    assert Runner(lock_retry_delay=0.01).run("list", "vms") == ""
    assert [a[0] for a in vbox.log()].count("list") == 3


def test_vboxmanage_missing(no_vboxmanage):
    with pytest.raises(MachineError) as e:
        Runner().version()
    assert str(e.value).startswith("VBoxManage not found") and "\n" not in str(e.value)


def test_vboxmanage_from_install_path(no_vboxmanage, monkeypatch, vbox):
    import sys

    monkeypatch.setenv("PATH", f"{no_vboxmanage}{os.pathsep}{os.path.dirname(sys.executable)}")
    monkeypatch.setenv("VBOX_INSTALL_PATH", str(Path(vbox.program).parent))
    assert Runner().version() == "7.0.14r161095"


# ---- the driver -----------------------------------------------------------------------------------

def test_create_power_remove(vbox, vbox_image, tmp_path):
    d = make(tmp_path, vbox_image, memory=2048, cpus=2, disk_size=4096)
    d.pre_create_check()
    assert vbox.vms() == {}                               # the check creates nothing
    d.create()
    c = d.config
    (uuid, vm), = vbox.vms().items()
    assert uuid == c.uuid and vm["name"] == "vb1" and vm["state"] == "running"
    assert [e["kind"] for e in d.journal] == ["ssh-key", "vm", "disk", "seed"]
    assert vm["config"]["memory"] == "2048" and vm["config"]["cpus"] == "2"
    assert vm["config"]["nic1"] == "nat" and vm["config"]["nic2"] == "hostonly"
    assert vm["config"]["hostonlyadapter2"] == c.hostonly_if
    assert vm["natpf"]["ssh"] == f"ssh,tcp,127.0.0.1,{c.ssh_port},,22"
    assert vm["natpf"]["docker"] == f"docker,tcp,127.0.0.1,{c.engine_port},,2376"
    assert vbox.state()["media"][c.disk_path] == {"size_mb": 4096}
    assert vm["storage"]["1-0"]["medium"] == str(d.machine_dir / "seed.iso")
    # the seed: a static address on the host-only network, matched by MAC; the machine's key
    label, files = seed.read_iso(d.machine_dir / "seed.iso")
    assert label == "cidata" and c.private_ip_address == "192.168.56.100"
    assert f"{c.private_ip_address}/24" in files["network-config"]
    assert c.hostonly_mac in files["network-config"] and c.nat_mac in files["network-config"]
    assert vm["config"]["macaddress2"] == c.hostonly_mac.replace(":", "").upper()
    assert Path(c.ssh_key_path + ".pub").read_text().split()[1] in files["user-data"]
    assert stat.S_IMODE(os.stat(c.ssh_key_path).st_mode) == 0o600
    # where clients reach it
    assert d.ssh_endpoint().host == "127.0.0.1" and d.ssh_endpoint().port == c.ssh_port
    assert d.engine_endpoint(2376) == ("127.0.0.1", c.engine_port)
    assert d.private_address() == "192.168.56.100" and "192.168.56.100" in d.addresses()
    assert c.claims().ports == {c.ssh_port, c.engine_port}
    # power
    assert d.state() == State.RUNNING
    d.stop()
    assert d.state() == State.STOPPED
    d.stop()
    d.start()
    assert d.state() == State.RUNNING
    d.kill()
    assert d.state() == State.STOPPED
    d.kill()
    # the record alone drives later commands
    again = VirtualBoxDriver(VirtualBoxConfig.from_record(c.to_record()), d.ctx)
    assert again.state() == State.STOPPED
    again.remove()
    assert vbox.vms() == {} and list(d.journal) == []
    assert not Path(c.disk_path).exists() and not (d.machine_dir / "seed.iso").exists()
    assert c.hostonly_if in vbox.hostonlyifs()            # shared: kept, as docker-machine did
    again.remove()
    with pytest.raises(NotFound):
        d.state()


def test_second_machine_shares_the_network_not_the_address(vbox, vbox_image, tmp_path):
    a = make(tmp_path, vbox_image, name="a")
    a.create()
    b = make(tmp_path, vbox_image, name="b", peers=[a.config.claims()])
    b.create()
    assert a.config.hostonly_if == b.config.hostonly_if and len(vbox.hostonlyifs()) == 1
    assert b.config.private_ip_address == "192.168.56.101"
    assert not {b.config.ssh_port, b.config.engine_port} & {a.config.ssh_port, a.config.engine_port}
    a.remove()
    b.remove()
    assert vbox.vms() == {}


def test_port_taken_while_stopped_is_repicked(vbox, vbox_image, tmp_path):
    d = make(tmp_path, vbox_image)
    d.create()
    d.kill()
    old = d.config.ssh_port
    s = socket.socket()
    s.bind(("127.0.0.1", old))
    s.listen(1)
    try:
        d.start()
        assert d.config.ssh_port != old
        vm = vbox.vms()[d.config.uuid]
        assert vm["natpf"]["ssh"] == f"ssh,tcp,127.0.0.1,{d.config.ssh_port},,22"
        assert any("forwarding SSH from 127.0.0.1:" in ln for ln in d.lines)
    finally:
        s.close()
    d.remove()


# ---- errors users meet: one line each, nothing left ----------------------------------------------

def _nothing_left(vbox, d):
    assert vbox.vms() == {}
    d.remove()                               # what the core runs on failure
    assert vbox.vms() == {} and list(d.journal) == []


def test_no_vboxmanage(no_vboxmanage, vbox_image, tmp_path):
    d = make(tmp_path, vbox_image)
    with pytest.raises(MachineError) as e:
        d.pre_create_check()
    assert str(e.value).startswith("VBoxManage not found: VirtualBox is not installed")
    d.remove()                               # nothing journaled: nothing to do, no VBoxManage needed


def test_vtx_missing_in_cpu_flags(vbox, vbox_image, tmp_path, monkeypatch):
    monkeypatch.setattr(VirtualBoxDriver, "cpuinfo", str(FIXTURES / "cpuinfo-novtx.txt"))
    d = make(tmp_path, vbox_image)
    with pytest.raises(MachineError, match=r"no hardware virtualization \(VT-x/AMD-V\).*--virtualbox-no-vtx-check"):
        d.pre_create_check()
    make(tmp_path, vbox_image, no_vtx_check=True).pre_create_check()
    assert vbox.vms() == {}


def test_vtx_refused_at_start(vbox, vbox_image, tmp_path):
    vbox.fault("startvm", fixture="stderr-vtx.txt")
    d = make(tmp_path, vbox_image)
    d.pre_create_check()
    with pytest.raises(MachineError) as e:
        d.create()
    assert str(e.value).startswith("VirtualBox cannot start the VM: hardware virtualization (VT-x/AMD-V) is not available")
    assert "\n" not in str(e.value)
    assert len(vbox.vms()) == 1              # journaled, so the rollback finds it
    d.remove()
    assert vbox.vms() == {} and list(d.journal) == []


def test_hostonly_range_refused(vbox, vbox_image, tmp_path):
    d = make(tmp_path, vbox_image, hostonly_cidr="192.168.99.1/24")   # docker-machine's default
    d.pre_create_check()
    with pytest.raises(MachineError) as e:
        d.create()
    msg = str(e.value)
    assert msg.startswith("VirtualBox refused host-only network 192.168.99.1/24: Code E_ACCESSDENIED")
    assert "/etc/vbox/networks.conf" in msg and "\n" not in msg
    assert vbox.hostonlyifs() == {}          # the interface it made for it is gone again
    _nothing_left(vbox, d)


def test_hostonly_creation_refused(vbox, vbox_image, tmp_path):
    vbox.fault("hostonlyif", stderr="VBoxManage: error: Failed to create the host-only adapter\n"
                                    "VBoxManage: error: VBoxNetAdpCtl: Error while adding new interface: "
                                    "failed to open /dev/vboxnetctl: No such file or directory")
    d = make(tmp_path, vbox_image)
    with pytest.raises(MachineError, match="^VirtualBox refused to create a host-only network: Failed to create"):
        d.create()
    _nothing_left(vbox, d)


def test_pinned_port_in_use(vbox, vbox_image, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        d = make(tmp_path, vbox_image, ssh_port=port)
        with pytest.raises(UsageError, match=f"--virtualbox-ssh-port {port}: port 127.0.0.1:{port} is in use"):
            d.pre_create_check()
        peer = make(tmp_path, vbox_image, name="p2", engine_port=port + 1 if port < 65535 else port - 1,
                    peers=[Claims(ports=frozenset({port + 1 if port < 65535 else port - 1}))])
        with pytest.raises(UsageError, match="is in use"):
            peer.pre_create_check()
    finally:
        s.close()
    assert vbox.vms() == {}


def test_name_already_registered(vbox, vbox_image, tmp_path):
    Runner().run("createvm", "--name", "vb1", "--basefolder", str(tmp_path / "elsewhere"), "--register")
    before = vbox.vms()
    d = make(tmp_path, vbox_image)
    with pytest.raises(UsageError) as e:
        d.pre_create_check()
    assert str(e.value).startswith("a VirtualBox VM named 'vb1' is already registered")
    # and if it appears between the check and the create, createvm's own error, one line
    with pytest.raises(MachineError, match="^VBoxManage createvm --name failed: Machine settings file"):
        d.create()
    assert vbox.vms() == before
    d.remove()
    assert vbox.vms() == before              # someone else's VM is never touched


def test_missing_image(vbox, tmp_path):
    d = make(tmp_path, tmp_path / "nope.qcow2")
    with pytest.raises(UsageError, match="--virtualbox-image .*nope.qcow2: no such file"):
        d.pre_create_check()


def test_vm_deleted_behind_our_back(vbox, vbox_image, tmp_path):
    d = make(tmp_path, vbox_image)
    d.create()
    Runner().run("controlvm", d.config.uuid, "poweroff")
    Runner().run("unregistervm", d.config.uuid, "--delete")
    with pytest.raises(NotFound, match="no longer exists"):
        d.state()
    d.remove()
    assert list(d.journal) == []
