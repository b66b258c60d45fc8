"""ARM resource IDs and names: what the driver creates, and how a docker-machine record named them."""
from __future__ import annotations

# Journal kinds in the order `rm` deletes them (dependents first).
REMOVE_ORDER = ("vm", "disk", "nic", "public_ip", "nsg", "availability_set", "subnet", "vnet", "resource_group")
#: kinds other machines may share: deleted only when nothing uses them any more
SHARED = ("availability_set", "subnet", "vnet", "resource_group")

TYPE = {
    "vm": "Microsoft.Compute/virtualMachines",
    "disk": "Microsoft.Compute/disks",
    "availability_set": "Microsoft.Compute/availabilitySets",
    "nic": "Microsoft.Network/networkInterfaces",
    "public_ip": "Microsoft.Network/publicIPAddresses",
    "nsg": "Microsoft.Network/networkSecurityGroups",
    "vnet": "Microsoft.Network/virtualNetworks",
}


def names(machine: str) -> dict[str, str]:
    """docker-machine's names for a machine's own resources."""
    return {"vm": machine, "nic": f"{machine}-nic", "public_ip": f"{machine}-ip", "nsg": f"{machine}-firewall",
            "disk": f"{machine}-os-disk"}


def group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def rid(sub: str, rg: str, kind: str, name: str) -> str:
    return f"{group_id(sub, rg)}/providers/{TYPE[kind]}/{name}"


def subnet_id(sub: str, rg: str, vnet: str, subnet: str) -> str:
    return f"{rid(sub, rg, 'vnet', vnet)}/subnets/{subnet}"


def parse(resource_id: str) -> dict:
    """An ARM ID -> {"rg", "name", "parent"} (parent: the virtual network of a subnet)."""
    p = resource_id.strip("/").split("/")
    out = {"sub": p[1] if len(p) > 1 else "", "rg": p[3] if len(p) > 3 else "", "name": p[-1], "parent": ""}
    if len(p) > 9:
        out["parent"] = p[7]
    return out
