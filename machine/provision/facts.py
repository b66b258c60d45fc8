"""What the provisioner knows about a host: /etc/os-release, the OS family, and the
facts script's output (engine present, cloud-init, locks, systemd, config hashes).

Pure parsing: no SSH here, so it is unit-tested on strings.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# OS family by os-release ID; ID_LIKE decides for derivatives we do not list.
FAMILIES = {
    "debian": "debian", "ubuntu": "debian", "raspbian": "debian", "linuxmint": "debian", "pop": "debian",
    "rhel": "redhat", "centos": "redhat", "rocky": "redhat", "almalinux": "redhat", "fedora": "redhat",
    "amzn": "redhat", "ol": "redhat",
    "sles": "suse", "sled": "suse", "opensuse": "suse", "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse", "opensuse-microos": "suse", "sle-micro": "suse",
}
LIKE_FAMILIES = {"debian": "debian", "ubuntu": "debian", "rhel": "redhat", "fedora": "redhat",
                 "centos": "redhat", "suse": "suse", "opensuse": "suse", "sles": "suse"}
SUPPORTED = "Debian, Ubuntu, RHEL, CentOS Stream, Rocky, AlmaLinux, Fedora, Amazon Linux, SLES, openSUSE"


@dataclass(frozen=True)
class OSInfo:
    id: str
    version_id: str = ""
    id_like: tuple[str, ...] = ()
    pretty_name: str = ""
    codename: str = ""

    @property
    def family(self) -> str | None:
        if self.id in FAMILIES:
            return FAMILIES[self.id]
        if self.id.startswith("opensuse"):
            return "suse"
        for like in self.id_like:
            if like in LIKE_FAMILIES:
                return LIKE_FAMILIES[like]
        return None

    @property
    def name(self) -> str:
        return self.pretty_name or f"{self.id} {self.version_id}".strip()

    @property
    def slug(self) -> str:
        """debian-12, ubuntu-22.04, fedora-40: the --distro name of bundles."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release(5): KEY=value lines, values optionally shell-quoted."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            parts = shlex.split(value, posix=True)
            value = parts[0] if len(parts) == 1 else " ".join(parts)
        except ValueError:
            value = value.strip().strip("\"'")
        out[key] = value
    return out


def os_info(text: str) -> OSInfo:
    d = parse_os_release(text)
    return OSInfo(
        id=d.get("ID", "linux").lower(),
        version_id=d.get("VERSION_ID", ""),
        id_like=tuple(d.get("ID_LIKE", "").lower().split()),
        pretty_name=d.get("PRETTY_NAME", ""),
        codename=d.get("VERSION_CODENAME", ""),
    )


@dataclass
class Facts:
    os: OSInfo
    arch: str = ""
    kernel: str = ""
    hostname: str = ""
    user: str = ""
    systemd: bool = True
    tools: set = field(default_factory=set)   # apt-get, dpkg, dnf, yum, zypper, rpm, curl, wget
    pm_busy: str = ""
    dpkg_broken: bool = False
    cloud_init: bool = False
    cloud_init_status: str = ""
    cloud_init_wait_s: float = 0.0
    dockerd: str = ""
    dockerd_version: str = ""
    docker_active: str = ""
    docker_enabled: str = ""
    unit_path: str = ""
    unit_text: str = ""
    swarm: str = ""                              # docker info's Swarm.LocalNodeState
    hashes: dict = field(default_factory=dict)   # remote path -> sha256 ("" when missing)

    @property
    def family(self) -> str | None:
        return self.os.family

    @property
    def engine_version(self) -> str:
        """"Docker version 20.10.24+dfsg1, build 297e128" -> "20.10.24+dfsg1"."""
        m = re.search(r"version\s+([^\s,]+)", self.dockerd_version)
        return m.group(1) if m else ""

    @property
    def engine_installed(self) -> bool:
        return bool(self.dockerd) and not self.dpkg_broken

    @property
    def in_swarm(self) -> bool:
        return self.swarm in ("active", "pending", "locked", "error")

    @property
    def engine_running(self) -> bool:
        return self.docker_active == "active"

    def exec_start(self) -> list[str]:
        """The vendor unit's dockerd command line without `-H fd://` (our drop-in adds -H)."""
        return vendor_exec_start(self.unit_text, self.dockerd or "/usr/bin/dockerd")


def parse_facts(output: str) -> Facts:
    kv: dict[str, str] = {}
    os_lines: list[str] = []
    unit_lines: list[str] = []
    hashes: dict[str, str] = {}
    tools: set[str] = set()
    for line in output.splitlines():
        if line.startswith("os:"):
            os_lines.append(line[3:])
        elif line.startswith("unit:"):
            unit_lines.append(line[5:])
        elif line.startswith("hash:"):
            path, _, digest = line[5:].rpartition("=")
            hashes[path] = digest.strip()
        elif line.startswith("has:"):
            tools.add(line[4:].partition("=")[0])
        elif "=" in line:
            k, _, v = line.partition("=")
            kv[k.strip()] = v.strip()
    try:
        wait_s = float(kv.get("cloud_init_wait_s") or 0)
    except ValueError:
        wait_s = 0.0
    return Facts(
        os=os_info("\n".join(os_lines)),
        arch=kv.get("arch", ""),
        kernel=kv.get("kernel", ""),
        hostname=kv.get("hostname", ""),
        user=kv.get("user", ""),
        systemd=kv.get("systemd", "1") == "1",
        tools=tools,
        pm_busy=kv.get("pm_busy", ""),
        dpkg_broken=kv.get("dpkg_broken") == "1",
        cloud_init=kv.get("cloud_init") == "1",
        cloud_init_status=kv.get("cloud_init_status", ""),
        cloud_init_wait_s=wait_s,
        dockerd=kv.get("dockerd", ""),
        dockerd_version=kv.get("dockerd_version", ""),
        docker_active=kv.get("docker_active", ""),
        docker_enabled=kv.get("docker_enabled", ""),
        unit_path=kv.get("unit_path", ""),
        swarm=kv.get("swarm", ""),
        unit_text="\n".join(unit_lines),
        hashes=hashes,
    )


_FD_HOST = re.compile(r"^(-H|--host)(=|$)")


def vendor_exec_start(unit_text: str, dockerd: str) -> list[str]:
    """Words of the unit's (last) ExecStart in [Service], minus any fd:// listen flag.

    Words are kept verbatim (systemd expands $DOCKER_OPTS and handles quoting),
    so vendor flags such as --containerd=... survive. Falls back to [dockerd].
    """
    section = ""
    cmd = ""
    pending = ""
    for raw in unit_text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line
            continue
        if section == "[Service]" and line.startswith("ExecStart="):
            value = line[len("ExecStart="):].strip()
            cmd = value  # a later ExecStart wins; an empty one resets
    words = cmd.split()
    # systemd prefixes: "-", "@", ":", "+", "!" before the path
    if words:
        words[0] = words[0].lstrip("-@:+!")
    if not words or "dockerd" not in words[0]:
        return [dockerd]
    out: list[str] = []
    skip = False
    for i, w in enumerate(words):
        if skip:
            skip = False
            continue
        if w in ("-H", "--host") and i + 1 < len(words) and words[i + 1].startswith("fd://"):
            skip = True
            continue
        if _FD_HOST.match(w) and "=" in w and w.split("=", 1)[1].startswith("fd://"):
            continue
        out.append(w)
    return out
