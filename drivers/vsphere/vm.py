"""The VM itself: clone spec, hardware reconfiguration, seed ISO upload, power, guest address."""
from __future__ import annotations

import ipaddress
import ssl
import time
import urllib.parse
import urllib.request
from typing import Callable

from ...errors import MachineError

SEED_NAME = "machine-seed.iso"


def clone_spec(pl, instance_uuid: str):
    from pyVmomi import vim

    reloc = vim.vm.RelocateSpec(pool=pl.pool, datastore=pl.datastore)
    if pl.host is not None:
        reloc.host = pl.host
    # the instance UUID is ours, so an interrupted create can still find its clone
    return vim.vm.CloneSpec(location=reloc, powerOn=False, template=False,
                            config=vim.vm.ConfigSpec(instanceUuid=instance_uuid))


def _disks(vm) -> list:
    from pyVmomi import vim

    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def _nics(vm) -> list:
    from pyVmomi import vim

    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def _nic_backing(net):
    from pyVmomi import vim

    if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
        port = vim.dvs.PortConnection(portgroupKey=net.key,
                                      switchUuid=net.config.distributedVirtualSwitch.uuid)
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=net.name, network=net)


def reconfig_spec(vm, *, cpus: int, memory_mb: int, disk_mb: int, networks: list, extra: dict[str, str],
                  report: Callable[[str], None] = lambda s: None):
    """CPU, memory, first disk grown to disk_mb (never shrunk), NICs on the given networks, extraConfig."""
    from pyVmomi import vim

    changes = []
    disks = _disks(vm)
    want_kb = int(disk_mb) * 1024
    if disks:
        disk = disks[0]
        if want_kb > (disk.capacityInKB or 0):
            disk.capacityInKB = want_kb
            disk.capacityInBytes = want_kb * 1024
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk))
        elif want_kb < (disk.capacityInKB or 0):
            report(f"the template's disk ({disk.capacityInKB // 1024} MB) is larger than --vsphere-disk-size; "
                   "keeping it")
    nics = _nics(vm)
    for i, net in enumerate(networks):
        if i < len(nics):
            nic = nics[i]
            nic.backing = _nic_backing(net)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic))
        else:
            nic = vim.vm.device.VirtualVmxnet3(key=-100 - i, backing=_nic_backing(net),
                                               connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                                                   startConnected=True, allowGuestControl=True))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=nic))
    return vim.vm.ConfigSpec(numCPUs=int(cpus), memoryMB=int(memory_mb), deviceChange=changes,
                             extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in extra.items()])


def cdrom_spec(vm, iso_path: str):
    """A CD-ROM with the datastore ISO on the VM's first IDE controller (added if the VM has none)."""
    from pyVmomi import vim

    ide = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualIDEController)]
    if not ide:
        raise MachineError(f"VM {vm.name} has no IDE controller for the seed ISO",
                           "use --vsphere-cloud-init-via guestinfo, or a template with an IDE controller")
    taken = {d.unitNumber for d in vm.config.hardware.device if getattr(d, "controllerKey", None) == ide[0].key}
    unit = next(u for u in range(2) if u not in taken) if len(taken) < 2 else None
    if unit is None:
        raise MachineError(f"VM {vm.name}'s IDE controller is full", "use --vsphere-cloud-init-via guestinfo")
    cd = vim.vm.device.VirtualCdrom(
        key=-200, controllerKey=ide[0].key, unitNumber=unit,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso_path),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True))
    return vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=cd)])


def upload(si, config, ssl_ctx: ssl.SSLContext, dc, ds, path: str, data: bytes, timeout: float = 300) -> str:
    """PUT data to the datastore's /folder URL; returns "[ds] path"."""
    from .session import _endpoint

    host, port = _endpoint(config)
    q = urllib.parse.urlencode({"dcPath": dc.name, "dsName": ds.name})
    url = f"https://{host}:{port}/folder/{urllib.parse.quote(path)}?{q}"
    cookie = si._stub.cookie
    req = urllib.request.Request(url, data=data, method="PUT",
                                 headers={"Cookie": cookie, "Content-Type": "application/octet-stream",
                                          "Content-Length": str(len(data))})
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ssl_ctx),
                                         urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            if resp.status not in (200, 201, 204):
                raise MachineError(f"uploading {path} to datastore {ds.name}: HTTP {resp.status}")
    except urllib.error.HTTPError as e:
        raise MachineError(f"uploading {path} to datastore {ds.name}: HTTP {e.code} {e.reason}") from None
    except OSError as e:
        raise MachineError(f"uploading {path} to datastore {ds.name}: {e}") from None
    return f"[{ds.name}] {path}"


def _usable(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.version == 4 and not a.is_link_local and not a.is_unspecified


def guest_ip(vm) -> str:
    """The first usable IPv4 address guest tools report ("" until there is one)."""
    ip = vm.guest.ipAddress if vm.guest else None
    if ip and _usable(ip):
        return ip
    for nic in (vm.guest.net or []) if vm.guest else []:
        for a in nic.ipAddress or []:
            if _usable(a):
                return a
    return ""


def wait_ip(vm, deadline_s: float, report: Callable[[str], None] = lambda s: None) -> str:
    end = time.monotonic() + deadline_s
    said = False
    delay = 0.1
    while True:
        ip = guest_ip(vm)
        if ip:
            return ip
        if not said:
            report(f"waiting for {vm.name}'s address from guest tools (up to {deadline_s:.0f}s)")
            said = True
        if time.monotonic() > end:
            raise MachineError(f"VM {vm.name} reported no IPv4 address within {deadline_s:.0f}s",
                               "check that the template runs VMware Tools (open-vm-tools) and gets an address "
                               "on --vsphere-network; raise --vsphere-ip-timeout")
        time.sleep(delay)
        delay = min(delay * 2, 3.0)
