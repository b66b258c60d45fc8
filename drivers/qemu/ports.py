"""Free TCP ports on 127.0.0.1 for the forwarded SSH and engine ports.

A port counts as free when a listening socket can bind it the way QEMU's slirp
does (SO_REUSEADDR, so TIME_WAIT leftovers don't count as "in use"). Ports
recorded by other qemu machines in the store are skipped even while those
machines are stopped, so a stopped machine gets its ports back on start.
Allocation runs under a store lock so two creates never pick the same port.
"""
from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

LOOPBACK = "127.0.0.1"
PORT_KEYS = ("SSHPort", "EnginePort")


def port_free(port: int, host: str = LOOPBACK) -> bool:
    if not 0 < int(port) < 65536:
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral(host: str = LOOPBACK) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(count: int, exclude: Iterable[int] = (), host: str = LOOPBACK, tries: int = 200) -> list[int]:
    """`count` distinct free ports, none of them in `exclude`."""
    taken = set(int(p) for p in exclude)
    out: list[int] = []
    for _ in range(tries):
        if len(out) == count:
            break
        p = _ephemeral(host)
        if p in taken or p in out or not port_free(p, host):
            continue
        out.append(p)
    if len(out) < count:
        raise OSError("no free ports on 127.0.0.1")
    return out


def recorded_ports(store_path: str | os.PathLike, skip_machine: str | None = None) -> set[int]:
    """Ports recorded in the store by qemu machines (other than `skip_machine`)."""
    ports: set[int] = set()
    machines = Path(store_path) / "machines"
    try:
        names = os.listdir(machines)
    except FileNotFoundError:
        return ports
    for name in names:
        if name == skip_machine:
            continue
        try:
            data = json.loads((machines / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if str(data.get("DriverName", "")) not in ("qemu", "kvm"):
            continue
        drv = data.get("Driver") or {}
        for key in PORT_KEYS:
            try:
                if drv.get(key):
                    ports.add(int(drv[key]))
            except (TypeError, ValueError):
                pass
    return ports


@contextmanager
def port_lock(store_path: str | os.PathLike, timeout: float = 60.0) -> Iterator[None]:
    from filelock import FileLock

    locks = Path(store_path) / ".locks"
    locks.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(locks / "qemu-ports.lock"), timeout=timeout):
        yield
