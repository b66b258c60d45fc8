"""`machine ssh` and `machine scp`: open a machine's SSH connection, copy files over SFTP.

`NAME:path` names a path on machine NAME (relative paths are relative to the SSH
user's home, a leading `~/` is accepted); anything else is a local path. A
spec whose NAME part is not a machine in the store is taken as a local path, so
`./a:b` and `C:`-style names still work.
"""
from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import MachineError, UsageError
from .store import NAME_RE


def known_hosts_path(store, name: str) -> Path:
    return store.machine_dir(name) / "known_hosts"


def host_key_hint(name: str) -> str:
    return f"if the host was re-created on purpose run: machine ssh-keys reset {name}"


def machine_connection(machines, name: str, *, timeout: float = 10.0, deadline_s: float = 0.0):
    """One authenticated connection to machine NAME, with its pinned host key checked.

    The host key must match the machine's known_hosts file and the fingerprint its
    record holds (Host.machine.ssh_key_fingerprint). Only a machine with neither (a
    store written by docker-machine, which never pinned) is pinned on this first
    contact; a lost known_hosts file is not a reason to trust whatever answers.
    A bad port, timeout or deadline is one UsageError line.
    """
    from . import ssh

    timeout = ssh.check_seconds(timeout, "SSH timeout")
    deadline_s = ssh.check_seconds(deadline_s, "SSH wait deadline", allow_zero=True)
    host = machines.load(name)
    driver = machines.driver_for(host, persist=False)
    if not driver.capabilities.ssh:
        raise UsageError(f"machine {name} uses driver {host.driver_name}, which has no SSH access")
    endpoint = driver.ssh_endpoint()
    if not endpoint.host:
        raise MachineError(f"machine {name} has no address yet", f"check: machine status {name}")
    ssh.check_port(endpoint.port, f"SSH port of machine {name}")
    kh = known_hosts_path(machines.store, name)
    recorded = getattr(host.machine, "ssh_key_fingerprint", "") or ""
    pin = not kh.exists() and not recorded
    try:
        if deadline_s > 0:
            return ssh.wait_for_ssh(endpoint, kh, deadline_s=deadline_s, pin=pin, hint=host_key_hint(name),
                                    expected_fingerprint=recorded)
        return ssh.connect(endpoint, kh, timeout=timeout, pin=pin, hint=host_key_hint(name),
                           expected_fingerprint=recorded)
    except MachineError:
        raise
    except Exception as e:  # refused, timeout, banner: one line with the cause
        raise MachineError(
            f"cannot connect to {name} over SSH at {endpoint.user}@{endpoint.host}:{endpoint.port} "
            f"({ssh.describe_error(e)})", f"check that it runs: machine status {name}") from None


# --------------------------------------------------------------------------- scp


@dataclass(frozen=True)
class Target:
    machine: str | None
    path: str

    def __str__(self) -> str:
        return f"{self.machine}:{self.path}" if self.machine else self.path


def parse_target(spec: str, is_machine: Callable[[str], bool]) -> Target:
    name, sep, path = spec.partition(":")
    if sep and name and NAME_RE.match(name) and "/" not in name and is_machine(name):
        return Target(name, _remote_path(path))
    return Target(None, spec)


def _remote_path(path: str) -> str:
    if path in ("", "~"):
        return "."
    if path.startswith("~/"):
        return path[2:] or "."
    return path


def copy(machines, src: str, dst: str, *, recursive: bool = False,
         on_file: Callable[[str, int], None] | None = None) -> int:
    """Copy between the local host and a machine; returns the number of files copied."""
    is_machine = machines.store.exists
    s, d = parse_target(src, is_machine), parse_target(dst, is_machine)
    if s.machine and d.machine:
        return _machine_to_machine(machines, s, d, recursive, on_file)
    if not s.machine and not d.machine:
        raise UsageError(f"neither {src!r} nor {dst!r} names a machine", "write NAME:PATH for the machine side")
    conn = machine_connection(machines, s.machine or d.machine)
    try:
        sftp = conn.sftp()
        if d.machine:
            return _upload(sftp, Path(s.path), d.path, recursive, on_file)
        return _download(sftp, s.path, Path(d.path), recursive, on_file)
    finally:
        conn.close()


def _machine_to_machine(machines, s: Target, d: Target, recursive: bool, on_file) -> int:
    """NAME1:PATH -> NAME2:PATH through a private temporary folder here (both host keys checked;
    neither machine needs to reach the other, as with docker-machine's scp through the client)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="machine-scp-") as tmp:
        os.chmod(tmp, 0o700)
        local = Path(tmp) / (Path(s.path.rstrip("/")).name or "data")
        src = machine_connection(machines, s.machine)
        try:
            _download(src.sftp(), s.path, local, recursive, None)
        finally:
            src.close()
        dst = machine_connection(machines, d.machine)
        try:
            return _upload(dst.sftp(), local, d.path, recursive, on_file)
        finally:
            dst.close()


def _remote_stat(sftp, path):
    try:
        return sftp.stat(path)
    except IOError:
        return None


def _upload(sftp, src: Path, dst: str, recursive: bool, on_file) -> int:
    if not src.exists():
        raise UsageError(f"{src}: no such file or directory")
    st = _remote_stat(sftp, dst)
    if st is not None and stat.S_ISDIR(st.st_mode):
        dst = posixpath.join(dst, src.name)
    if src.is_dir():
        if not recursive:
            raise UsageError(f"{src} is a directory", "pass -r to copy directories")
        count = 0
        if _remote_stat(sftp, dst) is None:
            _sftp_call(dst, sftp.mkdir, dst, stat.S_IMODE(src.stat().st_mode))
        for entry in sorted(src.iterdir()):
            count += _upload(sftp, entry, posixpath.join(dst, entry.name), True, on_file)
        return count
    mode = stat.S_IMODE(src.stat().st_mode)
    size = src.stat().st_size
    _sftp_call(dst, sftp.put, str(src), dst, confirm=True)
    _sftp_call(dst, sftp.chmod, dst, mode)
    if on_file:
        on_file(dst, size)
    return 1


def _download(sftp, src: str, dst: Path, recursive: bool, on_file) -> int:
    st = _remote_stat(sftp, src)
    if st is None:
        raise UsageError(f"{src}: no such file or directory on the machine")
    if dst.is_dir():
        dst = dst / posixpath.basename(src.rstrip("/") or src)
    if stat.S_ISDIR(st.st_mode):
        if not recursive:
            raise UsageError(f"{src} is a directory", "pass -r to copy directories")
        if not dst.is_dir():
            dst.mkdir(mode=0o700)
            os.chmod(dst, stat.S_IMODE(st.st_mode) or 0o755)  # the remote mode, whatever the umask
        count = 0
        for attr in sorted(sftp.listdir_attr(src), key=lambda a: a.filename):
            count += _download(sftp, posixpath.join(src, attr.filename), dst / attr.filename, True, on_file)
        return count
    _sftp_call(src, sftp.get, src, str(dst))
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    if on_file:
        on_file(str(dst), st.st_size or 0)
    return 1


def _sftp_call(label: str, fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except IOError as e:
        raise MachineError(f"{label}: {e.strerror or e}") from None


# --------------------------------------------------------------------------- pinned host keys


def pinned_keys(machines, name: str) -> list[str]:
    """"TYPE SHA256:..." of each host key pinned for machine NAME."""
    from . import ssh

    host = machines.load(name)
    kh = known_hosts_path(machines.store, name)
    if not kh.exists():
        return []
    ep = machines.driver_for(host, persist=False).ssh_endpoint()
    keys = ssh.HostKeys(kh).lookup(ep.host, ssh.check_port(ep.port, f"SSH port of machine {name}"))
    return [f"{t} {ssh.fingerprint(k)}" for t, k in keys.items()]


def forget_host_key(machines, name: str) -> bool:
    """Drop machine NAME's pinned host key; the next `ssh`/`provision` pins the key it meets.

    Returns False when nothing was pinned.
    """
    store = machines.store
    with store.lock(name):
        host = machines.load(name)
        kh = known_hosts_path(store, name)
        had = kh.exists() or bool(host.machine.ssh_key_fingerprint)
        try:
            kh.unlink()
        except FileNotFoundError:
            pass
        host.machine.ssh_key_fingerprint = ""
        store.save(host)
    return had
