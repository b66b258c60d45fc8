"""Private networks between qemu machines: one vde_switch per --qemu-network NAME.

    SHARED/networks/NAME/        (SHARED: the qemu driver's own folder in the store)
        leases.json   {"subnet": "192.168.77.0/24", "leases": {machine: {"ip":..., "mac":...}}}
        switch.pid    vde_switch's pid (daemonized)
        sw/           vde_switch's socket folder (ctl + one socket per port)

The switch starts with the first machine that needs it and stops when the last
lease is released. Addresses are static (written into each machine's NoCloud
network-config), allocated and recorded under a lock. Each network is its own
isolated layer-2 segment, so every network may use the same subnet.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ...errors import MachineError, UsageError
from ...fsutil import atomic_write_json
from . import process

DEFAULT_SUBNET = "192.168.77.0/24"
FIRST_HOST = 10
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


def validate_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UsageError(f"invalid network name {name!r}",
                         "use letters, digits, '-', '_' and '.', starting with a letter or digit")
    return name


class Network:
    def __init__(self, shared_dir: str | os.PathLike, name: str):
        self.name = validate_name(name)
        self.dir = Path(shared_dir) / "networks" / name
        self.leases_path = self.dir / "leases.json"
        self.pid_path = self.dir / "switch.pid"

    # ---- paths ---------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        """vde_switch's socket folder; short enough for AF_UNIX paths (108 bytes)."""
        return Path(process.short_socket_path(self.dir, "sw", reserve=24))

    @contextmanager
    def lock(self, timeout: float = 60.0) -> Iterator[None]:
        from filelock import FileLock

        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(self.dir / ".lock"), timeout=timeout):
            yield

    # ---- leases ----------------------------------------------------------------
    def _read(self) -> dict:
        try:
            data = json.loads(self.leases_path.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault("subnet", DEFAULT_SUBNET)
        data.setdefault("leases", {})
        return data

    def leases(self) -> dict:
        return self._read()["leases"]

    def lease(self, machine: str, mac: str) -> tuple[str, str]:
        """(address, cidr) for machine — the same one again if it has a lease already."""
        with self.lock():
            data = self._read()
            net = ipaddress.ip_network(data["subnet"])
            current = data["leases"].get(machine)
            if current:
                return current["ip"], f"{current['ip']}/{net.prefixlen}"
            used = {v["ip"] for v in data["leases"].values()}
            for i, host in enumerate(net.hosts()):
                if i + 1 < FIRST_HOST:
                    continue
                if str(host) not in used:
                    break
            else:
                raise MachineError(f"network {self.name!r} has no free addresses ({net})")
            data["leases"][machine] = {"ip": str(host), "mac": mac}
            atomic_write_json(self.leases_path, data)
            return str(host), f"{host}/{net.prefixlen}"

    def release(self, machine: str) -> None:
        """Give back machine's address; stop the switch and forget the network when none is left."""
        if not self.dir.exists():
            return
        with self.lock():
            data = self._read()
            if data["leases"].pop(machine, None) is not None:
                atomic_write_json(self.leases_path, data)
            if not data["leases"]:
                self._stop_switch()
                try:
                    self.leases_path.unlink()
                except FileNotFoundError:
                    pass
        if not self.leases():
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the switch ---------------------------------------------------------------
    def switch_pid(self) -> int | None:
        pid = process.read_pid(self.pid_path)
        if pid and process.pid_alive(pid, must_contain="vde_switch"):
            return pid
        return None

    def ensure_switch(self) -> str:
        """Start the switch if it is not running; return its socket folder."""
        with self.lock():
            sock = self.socket_dir
            if self.switch_pid() and (sock / "ctl").exists():
                return str(sock)
            exe = shutil.which("vde_switch")
            if not exe:
                raise MachineError("vde_switch not found (needed for --qemu-network)",
                                   "apt-get install vde2")
            shutil.rmtree(sock, ignore_errors=True)
            sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self.pid_path.unlink()
            except FileNotFoundError:
                pass
            proc = subprocess.run(
                [exe, "-s", str(sock), "-p", str(self.pid_path), "-m", "0700", "-d"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, timeout=30, start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.switch_pid() and (sock / "ctl").exists():
                    return str(sock)
                time.sleep(0.05)
            out = (proc.stdout or "").strip().splitlines()
            raise MachineError(f"vde_switch for network {self.name!r} did not start",
                               out[-1] if out else None)

    def _stop_switch(self) -> None:
        pid = self.switch_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait_gone(pid, 5.0) or process.kill_pid(pid)
        for p in (self.pid_path,):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        process.remove_short_socket(self.dir, "sw")
