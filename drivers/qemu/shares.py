"""Shared folders: `--qemu-share HOST_DIR[:GUEST_DIR][:ro]`, served by QEMU's own 9p.

Each share becomes `-fsdev local,...` + `-device virtio-9p-pci,mount_tag=shareN` on
the command line and one `bootcmd` of the NoCloud seed that mounts the tag at
GUEST_DIR on every boot (before SSH answers), so `docker run -v HOST_DIR:/x`
finds the files: GUEST_DIR defaults to the host path itself.

virtiofs would be faster but needs a virtiofsd daemon per share; 9p is built into
QEMU. The guest kernel needs 9p (Debian, Ubuntu and Fedora kernels have it; RHEL
and Rocky kernels do not).

Values reach QEMU's command line and cloud-init's YAML, so they are checked
here: absolute paths, no commas (the flag's list separator), colons only as the
separator, no control characters, and no guest folder that would hide the
system (/, /etc, /usr, ...).
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from ...errors import UsageError

FLAG = "--qemu-share"
#: guest folders a share may not cover (the system would not boot or dockerd would break)
RESERVED = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
            "/run", "/sbin", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/lib/docker", "/var/run")
MAX_SHARES = 16


@dataclass(frozen=True)
class Share:
    host: str
    guest: str
    readonly: bool = False

    def spec(self) -> str:
        return f"{self.host}:{self.guest}" + (":ro" if self.readonly else "")


def _bad(value: str, why: str) -> UsageError:
    return UsageError(f"invalid {FLAG} {value!r}", why)


def parse(value: str) -> Share:
    """HOST_DIR[:GUEST_DIR][:ro|:rw] -> Share (the host folder is made absolute, not checked)."""
    raw = value
    if not value or any(c in value for c in "\n\r\0\t") or any(ord(c) < 32 for c in value):
        raise _bad(raw, "it may not be empty or contain control characters")
    if "," in value:
        raise _bad(raw, "paths with commas cannot be shared")
    parts = value.split(":")
    readonly = False
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        readonly = parts.pop() == "ro"
    if len(parts) > 2:
        raise _bad(raw, "write HOST_DIR[:GUEST_DIR][:ro] (paths with ':' cannot be shared)")
    host = os.path.abspath(os.path.expanduser(parts[0])) if parts[0] else ""
    if not host:
        raise _bad(raw, "give the host folder")
    guest = parts[1] if len(parts) == 2 and parts[1] else host
    if not guest.startswith("/"):
        raise _bad(raw, "the guest folder must be an absolute path")
    guest = posixpath.normpath(guest)
    if guest.startswith("//"):
        guest = "/" + guest.lstrip("/")
    for reserved in RESERVED:
        if guest == reserved:
            raise _bad(raw, f"the guest folder {guest} would hide the system's own files; pick another")
    if guest.startswith("/proc/") or guest.startswith("/sys/") or guest.startswith("/dev/"):
        raise _bad(raw, f"the guest folder {guest} is not a place for files")
    return Share(host=host, guest=guest, readonly=readonly)


def parse_all(values: list[str]) -> list[Share]:
    shares = [parse(v) for v in values or []]
    if len(shares) > MAX_SHARES:
        raise UsageError(f"too many {FLAG} folders ({len(shares)})", f"share at most {MAX_SHARES}")
    seen: dict[str, Share] = {}
    for s in shares:
        if s.guest in seen:
            raise UsageError(f"{FLAG}: two folders mount at {s.guest}", "give each share its own GUEST_DIR")
        for other in seen:
            if s.guest.startswith(other.rstrip("/") + "/") or other.startswith(s.guest.rstrip("/") + "/"):
                raise UsageError(f"{FLAG}: {s.guest} and {other} are nested", "share folders that do not nest")
        seen[s.guest] = s
    return shares


def check_host_dirs(shares: list[Share]) -> None:
    """Each host folder exists and is a folder (pre-create and start)."""
    for s in shares:
        if not os.path.isdir(s.host):
            raise UsageError(f"{FLAG} {s.spec()}: {s.host} is not a folder",
                             "create it first, or fix the path")
        if not os.access(s.host, os.R_OK | os.X_OK):
            raise UsageError(f"{FLAG} {s.spec()}: {s.host} is not readable", "check its permissions")


def tag(index: int) -> str:
    return f"share{index}"


# the mount, run by cloud-init's bootcmd on every boot; paths are arguments, never code
MOUNT_SCRIPT = ('mkdir -p "$2" && { mountpoint -q "$2" || '
                'mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=none$3" "$1" "$2"; }')


def bootcmds(shares: list[Share]) -> list[list[str]]:
    """cloud-init `bootcmd` entries (argv lists: cloud-init quotes every item) mounting each share."""
    return [["sh", "-c", MOUNT_SCRIPT, "machine-share", tag(i), s.guest, ",ro" if s.readonly else ""]
            for i, s in enumerate(shares)]
