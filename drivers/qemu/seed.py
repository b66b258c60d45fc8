"""The NoCloud seed: an ISO9660 volume labelled `cidata`, built in pure Python.

Files: meta-data (instance id, hostname), user-data (#cloud-config: the
machine's SSH public key, `locale: false` because minbase has no locales, the
mounts of shared folders as `bootcmd`),
network-config (v2; NICs matched by MAC: DHCP on the user-mode NIC, a static
address on the private network). cloud-init also generates the SSH host keys on
first boot. The YAML is written as JSON (a YAML subset), so no value can break
the document's structure.

machine-seed.sh says the same for Machine's own images, which boot without cloud-init
(their machine-seed service, seed-agent.sh, sources it): shell assignments and two
functions, every value quoted with shlex.quote for the guest's POSIX sh.
"""
from __future__ import annotations

import io
import json
import os
import shlex
from pathlib import Path

from ...fsutil import atomic_write

NAT_NIC = "nat0"
PRIVATE_NIC = "priv0"


def meta_data(instance_id: str, hostname: str) -> str:
    return json.dumps({"instance-id": instance_id, "local-hostname": hostname}, indent=2) + "\n"


def _one_line_key(public_key: str) -> str:
    """The login key, one line: it goes into YAML, a shell assignment and authorized_keys."""
    public_key = public_key.strip()
    if not public_key or "\n" in public_key or "\r" in public_key:
        raise ValueError("public key must be one line")
    return public_key


def user_data(hostname: str, public_key: str, ssh_user: str = "root", bootcmd: list | None = None) -> str:
    public_key = _one_line_key(public_key)
    doc: dict = {
        "hostname": hostname,
        "preserve_hostname": False,
        # the hostname resolves (sudo otherwise warns "unable to resolve host" on every call)
        "manage_etc_hosts": "localhost",
        "ssh_pwauth": False,
        "locale": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519", "ecdsa"],
        "ssh_authorized_keys": [public_key],
    }
    if bootcmd:
        # every boot, before SSH answers (shared folders: see shares.py)
        doc["bootcmd"] = [list(map(str, c)) for c in bootcmd]
    if ssh_user == "root":
        # keys go to the distro's default user and, with this, to root as well
        doc["disable_root"] = False
    else:
        doc["users"] = ["default", {
            "name": ssh_user,
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "shell": "/bin/bash",
            "lock_passwd": True,
            "ssh_authorized_keys": [public_key],
        }]
    return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"


def network_config(nat_mac: str, private_mac: str | None = None,
                   private_cidr: str | None = None) -> str:
    ethernets: dict = {
        NAT_NIC: {"match": {"macaddress": nat_mac.lower()}, "dhcp4": True},
    }
    if private_mac and private_cidr:
        ethernets[PRIVATE_NIC] = {
            "match": {"macaddress": private_mac.lower()},
            "dhcp4": False,
            "addresses": [private_cidr],
        }
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=2) + "\n"


def agent_script(*, instance_id: str, hostname: str, public_key: str, ssh_user: str, nat_mac: str,
                 private_mac: str | None = None, private_cidr: str | None = None,
                 bootcmd: list | None = None) -> str:
    """machine-seed.sh: what seed-agent.sh applies (see its header)."""
    public_key = _one_line_key(public_key)
    q = shlex.quote
    lines = [
        "# machine-seed.sh, written by Machine's qemu driver; sourced by machine-seed.service",
        f"MS_INSTANCE_ID={q(instance_id)}",
        f"MS_HOSTNAME={q(hostname)}",
        f"MS_USER={q(ssh_user)}",
        f"MS_SSH_KEY={q(public_key)}",
        "ms_network() {",
        f"    ms_link {NAT_NIC} {q(nat_mac.lower())} dhcp",
    ]
    if private_mac and private_cidr:
        lines.append(f"    ms_link {PRIVATE_NIC} {q(private_mac.lower())} {q(private_cidr)}")
    lines += ["}", "ms_bootcmd() {"]
    lines += [f"    {shlex.join(map(str, c))}" for c in bootcmd or []] or ["    :"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# ISO9660 8.3 name, Rock Ridge / Joliet long name
_FILES = (("METADATA.;1", "meta-data"), ("USERDATA.;1", "user-data"), ("NETWORKC.;1", "network-config"),
          ("MACHINES.;1", "machine-seed.sh"))


def build_iso(files: dict[str, str]) -> bytes:
    """An ISO9660 image labelled cidata with Rock Ridge and Joliet names."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata",
            sys_ident="LINUX", app_ident_str="machine")
    try:
        for iso_name, long_name in _FILES:
            if long_name not in files:
                continue
            data = files[long_name].encode()
            iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name}", rr_name=long_name,
                       joliet_path=f"/{long_name}")
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


def write_seed(path: str | os.PathLike, *, instance_id: str, hostname: str, public_key: str,
               ssh_user: str, nat_mac: str, private_mac: str | None = None,
               private_cidr: str | None = None, bootcmd: list | None = None) -> Path:
    files = {
        "meta-data": meta_data(instance_id, hostname),
        "user-data": user_data(hostname, public_key, ssh_user, bootcmd),
        "network-config": network_config(nat_mac, private_mac, private_cidr),
        "machine-seed.sh": agent_script(instance_id=instance_id, hostname=hostname, public_key=public_key,
                                        ssh_user=ssh_user, nat_mac=nat_mac, private_mac=private_mac,
                                        private_cidr=private_cidr, bootcmd=bootcmd),
    }
    return atomic_write(path, build_iso(files), mode=0o600)


def read_iso(path: str | os.PathLike) -> tuple[str, dict[str, str]]:
    """(volume label, {rock ridge name: text}) — for tests and `inspect`."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        label = iso.pvd.volume_identifier.decode().strip()
        out = {}
        for _, long_name in _FILES:
            buf = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(buf, rr_path=f"/{long_name}")
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            out[long_name] = buf.getvalue().decode()
        return label, out
    finally:
        iso.close()
