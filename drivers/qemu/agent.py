"""The per-machine port-forward agent: published container ports on 127.0.0.1.

    python -m machine.drivers.qemu.agent --dir MACHINE_DIR --qmp SOCK --engine-port N --qemu-pid PID

Lima's model. The driver's create/start launches one agent per running VM (detached,
like QEMU itself) and stop/kill/rm end it. The agent

  1. waits until the machine folder holds the client certificates (ca.pem, cert.pem,
     key.pem: written when provisioning finishes) and the engine answers on the
     forwarded engine port, over mutual TLS;
  2. follows the engine's events stream (container start/die/destroy/...) and on each
     event (and on every reconnect) lists the running containers;
  3. for every published port (TCP and UDP) adds a QEMU user-mode forward through QMP
     (`human-monitor-command` `hostfwd_add nat0 tcp:127.0.0.1:HOST-:GUEST`): the same
     port on 127.0.0.1 where it is free, else a free one; and removes forwards whose
     containers are gone (`hostfwd_remove`);
  4. records what it forwards in ports.json (read by `machine ports NAME`);
  5. exits when QEMU exits, or on SIGTERM (removing its forwards first).

UDP under --qemu-network-mode isolated is one way: QEMU's user-mode network (restrict=on)
drops every datagram the guest sends, replies included, so a UDP service reached from the
host answers only with --qemu-network-mode nat.

Ports published on a specific guest address other than 0.0.0.0/:: (e.g.
`-p 127.0.0.1:8080:80` inside the guest) are not reachable by user-mode networking
and are skipped. Ports below 1024 go to a free port above unless the agent runs as root.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

STATE_FILE = "ports.json"
PID_FILE = "agent.pid"
LOG_FILE = "agent.log"
MODULE = "machine.drivers.qemu.agent"
NETDEV = "nat0"
LOOPBACK = "127.0.0.1"
WILDCARDS = ("", "0.0.0.0", "::")
EVENTS = ("start", "die", "destroy", "stop", "kill", "pause", "unpause", "restart", "rename")
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


# ---- what to forward ----------------------------------------------------------

def published(containers: list[dict]) -> dict[tuple[str, int], list[str]]:
    """{(proto, guest port): [container names]} for ports published on every guest address."""
    out: dict[tuple[str, int], list[str]] = {}
    for c in containers or []:
        if str(c.get("State", "running")) not in ("running", "paused", "restarting"):
            continue
        name = ((c.get("Names") or [""])[0] or str(c.get("Id", ""))[:12]).lstrip("/")
        for p in c.get("Ports") or []:
            port, proto, ip = p.get("PublicPort"), str(p.get("Type", "tcp")).lower(), str(p.get("IP") or "")
            if not port or proto not in ("tcp", "udp") or ip not in WILDCARDS:
                continue
            names = out.setdefault((proto, int(port)), [])
            if name not in names:
                names.append(name)
    return out


@dataclass
class Forward:
    proto: str
    host_port: int
    guest_port: int
    containers: list = field(default_factory=list)
    host: str = LOOPBACK

    def rule(self) -> str:
        return f"{self.proto}:{self.host}:{self.host_port}"


class Forwarder:
    """Keeps QEMU's forwards equal to the published ports; `hmp` runs one monitor command."""

    def __init__(self, hmp: Callable[[str], str], state_path: str | os.PathLike, *, qemu_pid: int = 0,
                 avoid: set[int] | None = None, root: bool | None = None, netdev: str = NETDEV,
                 port_free: Callable[[str, int], bool] | None = None,
                 free_port: Callable[[str, set], int] | None = None):
        from . import ports as _ports

        self.hmp = hmp
        self.state_path = Path(state_path)
        self.qemu_pid = qemu_pid
        self.avoid = set(avoid or ())
        self.root = (os.geteuid() == 0) if root is None else root
        self.netdev = netdev
        self.port_free = port_free or (lambda proto, p: _ports.proto_port_free(proto, p))
        self.free_port = free_port or (lambda proto, exclude: _ports.free_port(proto, exclude))
        self.forwards: dict[tuple[str, int], Forward] = {}
        self.errors: dict[str, str] = {}
        self._adopt()

    # ---- state on disk -------------------------------------------------------
    def _adopt(self) -> None:
        """Take over forwards a previous agent of this same QEMU process recorded."""
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return
        if not self.qemu_pid or data.get("qemu_pid") != self.qemu_pid:
            return
        for f in data.get("forwards", []):
            try:
                fw = Forward(proto=f["proto"], host_port=int(f["host_port"]), guest_port=int(f["guest_port"]),
                             containers=list(f.get("containers", [])))
            except (KeyError, TypeError, ValueError):
                continue
            self.forwards[(fw.proto, fw.guest_port)] = fw

    def save(self) -> None:
        from ...fsutil import atomic_write_json

        data = {"qemu_pid": self.qemu_pid, "agent_pid": os.getpid(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "forwards": [asdict(f) for f in sorted(self.forwards.values(), key=lambda f: (f.proto, f.guest_port))],
                "errors": dict(self.errors)}
        atomic_write_json(self.state_path, data)

    # ---- monitor commands -------------------------------------------------------
    def _add(self, proto: str, guest_port: int) -> Forward | None:
        taken = {f.host_port for f in self.forwards.values() if f.proto == proto} | self.avoid
        candidates = []
        if (guest_port >= 1024 or self.root) and guest_port not in taken:
            candidates.append(guest_port)
        last = ""
        for attempt in range(4):
            if not candidates:
                try:
                    candidates.append(self.free_port(proto, taken))
                except OSError as e:
                    last = str(e)
                    break
            port = candidates.pop(0)
            if not self.port_free(proto, port):
                taken.add(port)
                continue
            out = (self.hmp(f"hostfwd_add {self.netdev} {proto}:{LOOPBACK}:{port}-:{guest_port}") or "").strip()
            if not out:
                return Forward(proto=proto, host_port=port, guest_port=guest_port)
            last = out
            taken.add(port)
        self.errors[f"{proto}/{guest_port}"] = last or "no free port"
        _log(f"cannot forward {proto}/{guest_port}: {last or 'no free port'}")
        return None

    def _remove(self, fw: Forward) -> None:
        out = (self.hmp(f"hostfwd_remove {self.netdev} {fw.rule()}") or "").strip()
        if out and "removed" not in out:
            _log(f"hostfwd_remove {fw.rule()}: {out}")

    def sync(self, containers: list[dict]) -> bool:
        """Make the forwards match `containers`; True when something changed."""
        want = published(containers)
        errors_before = dict(self.errors)
        changed = False
        for key in [k for k in self.forwards if k not in want]:
            fw = self.forwards.pop(key)
            self._remove(fw)
            _log(f"removed {fw.proto} 127.0.0.1:{fw.host_port} -> {fw.guest_port}")
            changed = True
        for key, names in sorted(want.items()):
            fw = self.forwards.get(key)
            if fw is None:
                fw = self._add(*key)
                if fw is None:
                    continue
                self.errors.pop(f"{key[0]}/{key[1]}", None)
                self.forwards[key] = fw
                _log(f"added {fw.proto} 127.0.0.1:{fw.host_port} -> {fw.guest_port} ({', '.join(names)})")
                changed = True
            if fw.containers != names:
                fw.containers = list(names)
                changed = True
        for key in [k for k in self.errors if tuple((k.split("/")[0], int(k.split("/")[1]))) not in want]:
            self.errors.pop(key)
            changed = True
        changed = changed or self.errors != errors_before
        if changed:
            self.save()
        return changed

    def clear(self) -> None:
        for fw in list(self.forwards.values()):
            try:
                self._remove(fw)
            except Exception:
                pass
        self.forwards.clear()


# ---- the engine ---------------------------------------------------------------------

class Engine:
    """The engine API over mutual TLS on 127.0.0.1:PORT (stdlib only)."""

    def __init__(self, port: int, tls_dir: str | os.PathLike, host: str = LOOPBACK):
        self.port = int(port)
        self.host = host
        self.tls_dir = Path(tls_dir)

    def ready(self) -> bool:
        return all((self.tls_dir / n).is_file() for n in TLS_FILES)

    def _conn(self, timeout: float | None) -> http.client.HTTPSConnection:
        from ...engineapi import tls_context

        ctx = tls_context(*(str(self.tls_dir / n) for n in TLS_FILES))
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)

    def containers(self) -> list[dict]:
        conn = self._conn(10)
        try:
            conn.request("GET", "/containers/json", headers={"Host": "docker"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise OSError(f"engine answered {resp.status} for /containers/json")
            return json.loads(body)
        finally:
            conn.close()

    def events(self, on_open: Callable[[], None]):
        """Yield container events until the stream ends; `on_open` runs once it is subscribed."""
        filters = json.dumps({"type": ["container"], "event": list(EVENTS)})
        conn = self._conn(15)
        try:
            conn.request("GET", "/events?filters=" + quote(filters), headers={"Host": "docker"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise OSError(f"engine answered {resp.status} for /events")
            conn.sock.settimeout(None)   # events come when they come
            on_open()
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
        finally:
            conn.close()


# ---- the process ------------------------------------------------------------------------

def _qmp_hmp(qmp_path: str) -> Callable[[str], str]:
    from .process import QMP, QMPError

    def hmp(command: str) -> str:
        last: Exception | None = None
        for _ in range(20):
            try:
                with QMP(qmp_path, timeout=5.0) as mon:
                    return str(mon.command("human-monitor-command", **{"command-line": command}))
            except QMPError as e:   # the monitor is busy with another client: try again shortly
                last = e
                time.sleep(0.25)
        raise last  # type: ignore[misc]
    return hmp


def run(machine_dir: str, qmp_path: str, engine_port: int, qemu_pid: int, avoid: set[int]) -> int:
    from .process import pid_alive

    mdir = Path(machine_dir)
    fwd = Forwarder(_qmp_hmp(qmp_path), mdir / STATE_FILE, qemu_pid=qemu_pid, avoid=avoid)
    fwd.save()
    engine = Engine(engine_port, mdir)
    lock = threading.Lock()
    stopping = threading.Event()

    def finish(code: int) -> None:
        with lock:
            if pid_alive(qemu_pid):
                fwd.clear()
            try:
                (mdir / STATE_FILE).unlink()
            except OSError:
                pass
        os._exit(code)

    def on_term(signum, frame):
        stopping.set()
        threading.Thread(target=finish, args=(0,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def watchdog():
        while not stopping.is_set():
            if not pid_alive(qemu_pid):
                _log("QEMU is gone; exiting")
                try:
                    (mdir / STATE_FILE).unlink()
                except OSError:
                    pass
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watchdog, daemon=True).start()
    _log(f"agent for QEMU {qemu_pid}: engine 127.0.0.1:{engine_port}, monitor {qmp_path}")

    def resync():
        with lock:
            if not stopping.is_set():
                fwd.sync(engine.containers())

    delay = 0.5
    waiting_logged = False
    while not stopping.is_set():
        if not engine.ready():
            if not waiting_logged:
                _log("waiting for the client certificates (provisioning)")
                waiting_logged = True
            time.sleep(1.0)
            continue
        try:
            for _event in engine.events(on_open=resync):
                resync()
                delay = 0.5
            _log("events stream ended; reconnecting")
        except Exception as e:  # engine restarting, TLS not there yet, VM rebooting: try again
            if delay >= 4:
                _log(f"engine not reachable ({type(e).__name__}: {e}); retrying")
        time.sleep(delay)
        delay = min(delay * 2, 4.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=MODULE)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--engine-port", type=int, required=True)
    ap.add_argument("--qemu-pid", type=int, required=True)
    ap.add_argument("--avoid", default="")
    a = ap.parse_args(argv)
    avoid = {int(p) for p in a.avoid.split(",") if p.strip().isdigit()}
    return run(a.dir, a.qmp, a.engine_port, a.qemu_pid, avoid)


# ---- driver side: launch, end, read ------------------------------------------------------

def agent_pid(machine_dir: str | os.PathLike) -> int | None:
    from .process import pid_alive, read_pid

    pid = read_pid(Path(machine_dir) / PID_FILE)
    return pid if pid_alive(pid, must_contain=str(machine_dir)) and pid_alive(pid, must_contain=MODULE) else None


def spawn(machine_dir: str | os.PathLike, qmp_path: str, engine_port: int, qemu_pid: int,
          avoid: set[int] = frozenset()) -> int:
    """Start the agent detached (it outlives the command); return its pid."""
    import subprocess

    from ...fsutil import atomic_write

    mdir = Path(machine_dir)
    stop(mdir)
    argv = [sys.executable, "-m", MODULE, "--dir", str(mdir), "--qmp", qmp_path,
            "--engine-port", str(int(engine_port)), "--qemu-pid", str(int(qemu_pid)),
            "--avoid", ",".join(str(p) for p in sorted(avoid))]
    log = open(mdir / LOG_FILE, "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                start_new_session=True, close_fds=True)
    finally:
        log.close()
    atomic_write(mdir / PID_FILE, f"{proc.pid}\n".encode(), mode=0o600)
    return proc.pid


def stop(machine_dir: str | os.PathLike, timeout: float = 5.0) -> None:
    """End the agent (SIGTERM: it removes its forwards; SIGKILL after timeout). Idempotent."""
    from .process import kill_pid, wait_gone

    mdir = Path(machine_dir)
    pid = agent_pid(mdir)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait_gone(pid, timeout):
            kill_pid(pid)
    for name in (PID_FILE, STATE_FILE):
        try:
            (mdir / name).unlink()
        except FileNotFoundError:
            pass


def read_state(machine_dir: str | os.PathLike) -> dict:
    """What the agent forwards now ({} when no agent runs)."""
    mdir = Path(machine_dir)
    if not agent_pid(mdir):
        return {}
    try:
        return json.loads((mdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
