"""Free TCP ports on 127.0.0.1 for the forwarded SSH and engine ports.

A port counts as free when a listening socket can bind it the way QEMU's slirp
does (SO_REUSEADDR, so TIME_WAIT leftovers don't count as "in use"). Ports
claimed by other machines (the core's peer claims) are skipped even while those
machines are stopped, so a stopped machine gets its ports back on start.
Allocation runs under the driver's named lock so two creates never pick the same port.
"""
from __future__ import annotations

import socket
from typing import Iterable

LOOPBACK = "127.0.0.1"
LOCK_NAME = "qemu-ports"


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


def udp_port_free(port: int, host: str = LOOPBACK) -> bool:
    if not 0 < int(port) < 65536:
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, int(port)))
        return True
    except OSError:
        return False
    finally:
        s.close()


def proto_port_free(proto: str, port: int, host: str = LOOPBACK) -> bool:
    return udp_port_free(port, host) if proto == "udp" else port_free(port, host)


def free_port(proto: str, exclude: Iterable[int] = (), host: str = LOOPBACK, tries: int = 200) -> int:
    """One free TCP or UDP port on host, not in `exclude`."""
    taken = set(int(p) for p in exclude)
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, 0))
            p = s.getsockname()[1]
        finally:
            s.close()
        if p not in taken and proto_port_free(proto, p, host):
            return p
    raise OSError(f"no free {proto} port on {host}")
