"""One function per cloud resource: look up, create, delete (missing = fine), find-by-owner.

Everything takes an openstacksdk Connection; nothing here touches the journal or config —
the driver decides the order, journals each resource, and maps errors.

"Owner" lookups let `rm` find a resource whose create call was interrupted (Ctrl-C, lost
connection) before its ID came back: each resource carries the create's token in a
description or metadata field, and only a resource carrying that token is ever deleted.
"""
from __future__ import annotations

import time

from ...errors import NotFound, UsageError

# Engine (TLS), swarm manager, swarm gossip (tcp+udp) and overlay (VXLAN).
ENGINE_SWARM_RULES = (("tcp", 2376), ("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789))
TOKEN_KEY = "machine-token"


def owner_text(machine_name: str, token: str) -> str:
    return f"created by machine for {machine_name} ({TOKEN_KEY}={token})"


# ---- look-ups (pre-create check and create) -------------------------------------------

def find_flavor(conn, name: str | None, flavor_id: str | None):
    if flavor_id:
        flavor = _find(conn.compute.find_flavor, flavor_id)
        if flavor is None:
            raise NotFound(f"flavor {flavor_id!r} not found", "list them with `openstack flavor list`")
        return flavor
    if not name:
        raise UsageError("a flavor is required", "pass --openstack-flavor-name or --openstack-flavor-id")
    flavor = _find(conn.compute.find_flavor, name)
    if flavor is None:
        raise NotFound(f"flavor {name!r} not found", "list them with `openstack flavor list`")
    return flavor


def find_image(conn, name: str | None, image_id: str | None):
    what = image_id or name
    if not what:
        raise UsageError("an image is required", "pass --openstack-image-name or --openstack-image-id")
    image = _find(conn.image.find_image, what)
    if image is None:
        raise NotFound(f"image {what!r} not found", "list them with `openstack image list`")
    status = getattr(image, "status", None)
    if status and status != "active":
        raise UsageError(f"image {what!r} is {status}, not active", "choose an active image")
    return image


def find_network(conn, name: str | None, network_id: str | None):
    """The named network, or the only one the project sees when none is named."""
    what = network_id or name
    if what:
        net = _find(conn.network.find_network, what)
        if net is None:
            raise NotFound(f"network {what!r} not found", "list them with `openstack network list`")
        return net
    nets = [n for n in conn.network.networks() if not getattr(n, "is_router_external", False)]
    if len(nets) == 1:
        return nets[0]
    if not nets:
        raise NotFound("no network is visible to the project",
                       "create one, or pass --openstack-net-name of a shared network")
    names = ", ".join(sorted(n.name or n.id for n in nets)[:6])
    raise UsageError(f"{len(nets)} networks are visible ({names})", "choose one with --openstack-net-name")


def find_floating_pool(conn, pool: str):
    net = _find(conn.network.find_network, pool)
    if net is None:
        raise NotFound(f"floating IP pool {pool!r} not found",
                       "list external networks with `openstack network list --external`")
    if getattr(net, "is_router_external", None) is False:
        raise UsageError(f"network {pool!r} is not external", "--openstack-floatingip-pool needs an external network")
    return net


def find_security_groups(conn, names: list[str]) -> list:
    groups = []
    for name in names:
        group = _find(conn.network.find_security_group, name, project_id=conn.current_project_id)
        if group is None:
            group = _find(conn.network.find_security_group, name)
        if group is None:
            raise NotFound(f"security group {name!r} not found", "list them with `openstack security group list`")
        groups.append(group)
    return groups


def find_keypair(conn, name: str):
    keypair = _find(conn.compute.find_keypair, name)
    if keypair is None:
        raise NotFound(f"key pair {name!r} not found", "list them with `openstack keypair list`")
    return keypair


def check_quota(conn, flavor, servers: int = 1) -> None:
    """Raise QuotaExceeded when the project cannot hold one more server of this flavor."""
    from .errors import QuotaExceeded

    absolute = conn.compute.get_limits().absolute
    checks = (
        ("instances", absolute.instances, absolute.instances_used, servers),
        ("cores", absolute.total_cores, absolute.total_cores_used, (flavor.vcpus or 0) * servers),
        ("RAM (MiB)", absolute.total_ram, absolute.total_ram_used, (flavor.ram or 0) * servers),
    )
    for what, limit, used, need in checks:
        if limit is None or limit < 0 or used is None:
            continue
        if used + need > limit:
            raise QuotaExceeded(f"quota exceeded: {what} {used} of {limit} used, the server needs {need}",
                                "remove unused servers or ask the cloud's admins for more quota")


# ---- create ---------------------------------------------------------------------------

def create_keypair(conn, name: str, public_key: str):
    return conn.compute.create_keypair(name=name, public_key=public_key)


def create_security_group(conn, name: str, description: str):
    return conn.network.create_security_group(name=name, description=description)


def add_machine_rules(conn, group_id: str, ssh_port: int, ip_version: int) -> None:
    rules = [("tcp", 22)] + ([("tcp", ssh_port)] if ssh_port != 22 else []) + list(ENGINE_SWARM_RULES)
    ethertypes = ["IPv4"] + (["IPv6"] if ip_version == 6 else [])
    for ethertype in ethertypes:
        prefix = "0.0.0.0/0" if ethertype == "IPv4" else "::/0"
        for proto, port in rules:
            conn.network.create_security_group_rule(
                security_group_id=group_id, direction="ingress", ethertype=ethertype, protocol=proto,
                port_range_min=port, port_range_max=port, remote_ip_prefix=prefix)


def find_server_group(conn, name_or_id: str):
    return _find(conn.compute.find_server_group, name_or_id)


def create_server_group(conn, name: str, policy: str):
    return conn.compute.create_server_group(name=name, policy=policy)


def create_port(conn, name: str, network_id: str, security_group_ids: list[str], description: str):
    attrs = dict(name=name, network_id=network_id, description=description)
    if security_group_ids:
        attrs["security_group_ids"] = security_group_ids
    return conn.network.create_port(**attrs)


def create_server(conn, **attrs):
    return conn.compute.create_server(**attrs)


def create_floating_ip(conn, pool_id: str, port_id: str, description: str):
    return conn.network.create_ip(floating_network_id=pool_id, port_id=port_id, description=description)


def fixed_ip(port, addresses: dict | None, ip_version: int) -> str:
    """The port's fixed address of the wanted IP version (the server's addresses as a fallback)."""
    for item in getattr(port, "fixed_ips", None) or []:
        ip = item.get("ip_address", "")
        if ip and (":" in ip) == (ip_version == 6):
            return ip
    for entries in (addresses or {}).values():
        for a in entries:
            if a.get("version") == ip_version and a.get("OS-EXT-IPS:type", "fixed") == "fixed":
                return a.get("addr", "")
    return ""


# ---- delete (missing is fine) -----------------------------------------------------------

def delete_server(conn, server_id: str, wait: float, interval: float) -> None:
    conn.compute.delete_server(server_id, ignore_missing=True)
    wait_gone(lambda: conn.compute.get_server(server_id), wait, interval, f"server {server_id}")


def delete_volume(conn, volume_id: str, wait: float, interval: float) -> None:
    from openstack import exceptions as sdk

    deadline = time.monotonic() + wait
    while True:
        try:
            conn.block_storage.delete_volume(volume_id, ignore_missing=True)
            break
        except sdk.HttpException as e:
            # still attached / detaching while its server goes away: retry until the deadline
            if e.status_code in (400, 409) and time.monotonic() < deadline:
                time.sleep(interval)
                continue
            raise
    wait_gone(lambda: conn.block_storage.get_volume(volume_id), wait, interval, f"volume {volume_id}")


def delete_port(conn, port_id: str) -> None:
    conn.network.delete_port(port_id, ignore_missing=True)


def delete_floating_ip(conn, ip_id: str) -> None:
    conn.network.delete_ip(ip_id, ignore_missing=True)


def delete_security_group(conn, group_id: str, wait: float, interval: float) -> None:
    from openstack import exceptions as sdk

    deadline = time.monotonic() + wait
    while True:
        try:
            conn.network.delete_security_group(group_id, ignore_missing=True)
            return
        except sdk.ConflictException:
            # still in use by a port Nova or Neutron has not finished deleting
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


def delete_keypair(conn, name: str) -> None:
    conn.compute.delete_keypair(name, ignore_missing=True)


def delete_server_group_if_empty(conn, group_id: str) -> bool:
    """Delete a server group we created once no server is left in it; True if it is gone."""
    group = _find(conn.compute.find_server_group, group_id)
    if group is None:
        return True
    if group.member_ids:
        return False
    conn.compute.delete_server_group(group_id, ignore_missing=True)
    return True


def wait_gone(get, wait: float, interval: float, what: str) -> None:
    from openstack import exceptions as sdk

    deadline = time.monotonic() + wait
    while True:
        try:
            res = get()
        except sdk.NotFoundException:
            return
        if res is None or getattr(res, "status", None) in ("DELETED", "deleted", "SOFT_DELETED"):
            return
        if time.monotonic() >= deadline:
            raise sdk.ResourceTimeout(f"{what} still exists after {wait:.0f}s (status {getattr(res, 'status', '?')})")
        time.sleep(interval)


# ---- find a resource whose create call was interrupted ---------------------------------

def find_owned(conn, kind: str, entry: dict) -> list[str]:
    """IDs of resources of `kind` carrying this create's token (see owner_text)."""
    token = entry.get("token")
    name = entry.get("name")
    if not token:
        return []
    mark = f"{TOKEN_KEY}={token}"
    if kind == "server":
        return [s.id for s in conn.compute.servers(name=f"^{_re_escape(name)}$" if name else None)
                if (s.metadata or {}).get(TOKEN_KEY) == token]
    if kind == "port":
        return [p.id for p in conn.network.ports(name=name) if mark in (p.description or "")]
    if kind == "secgroup":
        return [g.id for g in conn.network.security_groups(name=name) if mark in (g.description or "")]
    if kind == "floating_ip":
        return [i.id for i in conn.network.ips() if mark in (i.description or "")]
    if kind == "keypair":
        from .keys import same_key

        kp = _find(conn.compute.find_keypair, name) if name else None
        return [kp.name] if kp is not None and same_key(kp.public_key, entry.get("public_key")) else []
    if kind == "server_group":
        # Server groups have no description: a group of that name with no members is ours.
        return [g.id for g in conn.compute.server_groups() if g.name == name and not g.member_ids]
    return []


def _find(find, name_or_id: str, **query):
    """openstacksdk's find_*, None when missing (ignore_missing=True is deprecated in the SDK)."""
    from openstack import exceptions as sdk

    try:
        return find(name_or_id, ignore_missing=False, **query)
    except sdk.NotFoundException:
        return None


def _re_escape(text: str) -> str:
    import re

    return re.escape(text)
