"""Host-only network (machine-to-machine traffic, swarm) and NAT port forwards (SSH, engine on 127.0.0.1).

The host-only interface whose address matches --virtualbox-hostonly-cidr is reused, else one is
created and given that address; an interface whose address VirtualBox refuses is removed again at
once, so a refused creation leaves nothing. Interfaces stay when machines go (docker-machine did
the same: they are shared). Each machine gets a static address in the CIDR through its NoCloud
seed (no VirtualBox DHCP server is needed), unique among the machines' claims.
"""
from __future__ import annotations

import ipaddress
import secrets

from ...errors import MachineError, UsageError
from . import parse
from .runner import Runner, VBoxError

LOCK = "virtualbox-network"
FIRST_HOST = 100      # docker-machine's DHCP range started at .100


def parse_cidr(cidr: str, flag: str = "--virtualbox-hostonly-cidr") -> ipaddress.IPv4Interface:
    try:
        iface = ipaddress.IPv4Interface(cidr)
    except ValueError:
        raise UsageError(f"invalid {flag} {cidr!r}", "write the host's address and prefix, e.g. 192.168.99.1/24") from None
    net = iface.network
    if net.prefixlen > 29 or iface.ip in (net.network_address, net.broadcast_address):
        raise UsageError(f"invalid {flag} {cidr!r}", "give the host's address in a network of /29 or larger")
    return iface


def mac() -> str:
    """A VirtualBox-range MAC (08:00:27:…)."""
    b = secrets.token_bytes(3)
    return "08:00:27:%02x:%02x:%02x" % (b[0], b[1], b[2])


def vbox_mac(m: str) -> str:
    return m.replace(":", "").upper()


def find_hostonlyif(runner: Runner, iface: ipaddress.IPv4Interface) -> str | None:
    for b in parse.blocks(runner.run("list", "hostonlyifs")):
        if b.get("IPAddress") == str(iface.ip) and b.get("NetworkMask") == str(iface.netmask):
            return b.get("Name")
    return None


def ensure_hostonlyif(runner: Runner, iface: ipaddress.IPv4Interface, report=lambda s: None) -> str:
    """The host-only interface for iface (reused or created); the caller holds LOCK."""
    name = find_hostonlyif(runner, iface)
    if name:
        return name
    try:
        out = runner.run("hostonlyif", "create")
    except VBoxError as e:
        raise MachineError(f"VirtualBox refused to create a host-only network: {e.detail}",
                           "on macOS allow VirtualBox's kernel extension; on Linux load vboxnetadp "
                           "(`sudo modprobe vboxnetadp`)") from None
    name = parse.created_hostonlyif(out)
    if not name:
        raise MachineError(f"VBoxManage hostonlyif create said nothing of the interface it made: {out.strip()[:200]}")
    try:
        runner.run("hostonlyif", "ipconfig", name, "--ip", str(iface.ip), "--netmask", str(iface.netmask))
    except VBoxError as e:
        try:
            runner.run("hostonlyif", "remove", name)
        except MachineError:
            pass
        raise MachineError(f"VirtualBox refused host-only network {iface.with_prefixlen}: {e.detail}",
                           f"allow it in /etc/vbox/networks.conf (a line `* {iface.network}`) or pass "
                           f"--virtualbox-hostonly-cidr 192.168.56.1/21 (VirtualBox's default range)") from None
    report(f"created host-only network {name} ({iface.with_prefixlen})")
    return name


def pick_address(iface: ipaddress.IPv4Interface, taken: set[str]) -> str:
    net = iface.network
    hosts = list(net.hosts())
    start = FIRST_HOST if net.num_addresses > 256 or len(hosts) > FIRST_HOST + 1 else 1
    ordered = hosts[start - 1:] + hosts[:start - 1]
    for ip in ordered:
        if ip != iface.ip and str(ip) not in taken:
            return str(ip)
    raise MachineError(f"no free address left in host-only network {net}", "pass a larger --virtualbox-hostonly-cidr")
