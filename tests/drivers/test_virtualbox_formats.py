"""VBoxManage's documented output formats (fixtures in tests/virtualbox/fixtures, written from the
VirtualBox manual, not recorded from a running VirtualBox) through the driver's parsers."""
from __future__ import annotations

import ipaddress

import pytest

from machine.drivers.virtualbox import STATES, VirtualBoxConfig, parse, vtx_available
from machine.drivers.virtualbox.network import parse_cidr, pick_address, vbox_mac
from machine.drivers.virtualbox.runner import first_error
from machine.errors import UsageError
from machine.model import State
from virtualbox.standin import FIXTURES, fixture_text


def test_showvminfo_machinereadable():
    info = parse.machinereadable(fixture_text("showvminfo-running.txt"))
    assert info["name"] == 'docker "dev" box'                       # escaped quotes
    assert info["VMState"] == "running" and STATES[info["VMState"]] == State.RUNNING
    assert info["memory"] == "1024" and info["cpus"] == "1"           # bare numbers
    assert info["SATA-0-0"].endswith("/disk.vdi")                      # quoted keys
    assert info["Forwarding(1)"] == "ssh,tcp,127.0.0.1,43022,,22"
    assert info["hostonlyadapter2"] == "vboxnet0" and info["macaddress2"] == "080027D4E5F6"
    assert info["Encryption"] if "Encryption" in info else True         # a line without '=' is skipped
    off = parse.machinereadable(fixture_text("showvminfo-poweroff.txt"))
    assert STATES[off["VMState"]] == State.STOPPED and "SessionName" not in off


def test_list_vms():
    vms = parse.list_vms(fixture_text("list-vms.txt"))
    assert vms['docker "dev" box'] == "6f2a6b1e-1f0c-4e43-9a8e-0d2b7c6f1a10"
    assert vms["with space"] == "11111111-2222-3333-4444-555555555555"
    assert "<inaccessible>" in vms and len(vms) == 4


def test_list_hostonlyifs():
    ifs = parse.blocks(fixture_text("list-hostonlyifs.txt"))
    assert [(i["Name"], i["IPAddress"], i["NetworkMask"]) for i in ifs] == [
        ("vboxnet0", "192.168.56.1", "255.255.255.0"), ("vboxnet1", "192.168.99.1", "255.255.255.0")]
    assert ifs[1]["IPV6Address"] == ""


def test_guestproperty_and_created():
    assert parse.guestproperty(fixture_text("guestproperty-value.txt")) == "192.168.99.100"
    assert parse.guestproperty(fixture_text("guestproperty-none.txt")) is None
    assert parse.created_uuid(fixture_text("createvm.txt")) == "6f2a6b1e-1f0c-4e43-9a8e-0d2b7c6f1a10"
    assert parse.created_hostonlyif(fixture_text("hostonlyif-create.txt")) == "vboxnet2"
    assert parse.version_tuple(fixture_text("version.txt")) == (7, 0, 14)
    assert parse.version_tuple("garbage") == ()


@pytest.mark.parametrize("name,line", [
    ("stderr-vtx.txt", "VT-x is not available (VERR_VMX_NO_VMX)"),
    ("stderr-name-registered.txt", "Machine settings file '/home/u/VirtualBox VMs/dev/dev.vbox' already exists"),
    ("stderr-hostonly-refused.txt", "Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)"),
    ("stderr-not-found.txt", "Could not find a registered machine named '6f2a6b1e-1f0c-4e43-9a8e-0d2b7c6f1a10'"),
    ("stderr-locked.txt", "The machine 'dev' is already locked for a session (or being unlocked)"),
])
def test_first_error_line(name, line):
    assert first_error(fixture_text(name)) == line


def test_vtx_from_cpuinfo(tmp_path):
    assert vtx_available(str(FIXTURES / "cpuinfo-vtx.txt")) is True
    assert vtx_available(str(FIXTURES / "cpuinfo-novtx.txt")) is False
    assert vtx_available(str(tmp_path / "none")) is None


def test_hostonly_addresses():
    iface = parse_cidr("192.168.99.1/24")
    assert pick_address(iface, set()) == "192.168.99.100"
    assert pick_address(iface, {"192.168.99.100"}) == "192.168.99.101"
    small = parse_cidr("10.9.0.1/29")
    assert pick_address(small, set()) == "10.9.0.2"
    with pytest.raises(UsageError):
        parse_cidr("192.168.99.0/24")       # the network address is not the host's
    with pytest.raises(UsageError):
        parse_cidr("nonsense")
    assert vbox_mac("08:00:27:a1:b2:c3") == "080027A1B2C3"


def test_config_flags_and_validation():
    keys = {s.flag: s.key for s in VirtualBoxConfig.options()}
    # docker-machine's flags and config.json keys, kept as they were
    for flag, key in {"memory": "Memory", "cpu-count": "CPU", "disk-size": "DiskSize",
                      "hostonly-cidr": "HostOnlyCIDR", "hostonly-nictype": "HostOnlyNicType",
                      "hostonly-nicpromisc": "HostOnlyPromiscMode", "nat-nictype": "NatNicType",
                      "no-share": "NoShare", "share-folder": "ShareFolder", "no-vtx-check": "NoVTXCheck"}.items():
        assert keys[flag] == key
    cfg = VirtualBoxConfig.from_options({"memory": "2048", "hostonly_nicpromisc": "allow-all"},
                                        driver_name="virtualbox", machine_name="x", environ={})
    assert cfg.memory == 2048 and cfg.to_record()["HostOnlyPromiscMode"] == "allow-all"
    for bad, msg in [({"hostonly_nictype": "e1000"}, "choose one of"),
                     ({"hostonly_cidr": "192.168.99.1"}, "network of /29 or larger"),
                     ({"boot2docker_url": "https://x/b2d.iso"}, "boot2docker is gone"),
                     ({"share_folder": "/nocolon"}, "HOSTDIR:NAME"),
                     ({"ssh_port": 4000, "engine_port": 4000}, "both 4000")]:
        with pytest.raises(UsageError, match=msg):
            VirtualBoxConfig.from_options(bad, driver_name="virtualbox", machine_name="x", environ={})
