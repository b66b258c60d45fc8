"""A test-only TCP gateway: cloud server addresses on loopback -> real pooled VMs.

The test cloud's servers (Nova's fake virt driver) get addresses from the flat network
127.10.0.0/24 but are not machines. This gateway listens on those addresses, on the ports
Machine talks to (22 for SSH, 2376 for the engine), and forwards each connection to a
real VM's loopback port forward (QEMU user networking `hostfwd` on 127.0.0.1):

    127.10.0.X:22   -> 127.0.0.1:<VM's forwarded SSH port>
    127.10.0.X:2376 -> 127.0.0.1:<VM's forwarded engine port>

The first connection to an address assigns it the next free VM; the assignment holds
until `release()` (the server behind it is gone). Each address is bound explicitly (never
0.0.0.0); everything stays on loopback. Linux routes all of 127.0.0.0/8 to `lo`, so no
address has to be added. Binding port 22 needs root (or CAP_NET_BIND_SERVICE).

    gw = Gateway([{22: vm1_ssh, 2376: vm1_engine}, {22: vm2_ssh, 2376: vm2_engine}])
    gw.start()          # binds everything or raises
    ...
    gw.assignments      # {"127.10.0.57": 0, ...}
    gw.stop()
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from typing import Iterable, Mapping, Sequence

log = logging.getLogger("tests.harness.gateway")

#: the test cloud's allocation pool on public-flat (stack.py)
DEFAULT_ADDRESSES = tuple(f"127.10.0.{i}" for i in range(50, 100))
DEFAULT_PORTS = (22, 2376)
CHUNK = 64 * 1024


class Gateway:
    def __init__(self, targets: Sequence[Mapping[int, int]], *, addresses: Iterable[str] = DEFAULT_ADDRESSES,
                 ports: Iterable[int] = DEFAULT_PORTS, target_host: str = "127.0.0.1"):
        self.targets = [dict(t) for t in targets]
        self.addresses = [str(a) for a in addresses]
        self.ports = tuple(ports)
        self.target_host = target_host
        for a in self.addresses + [target_host]:
            if not ipaddress.ip_address(a).is_loopback:
                raise ValueError(f"{a} is not a loopback address: the gateway stays on loopback")
        for t in self.targets:
            missing = set(self.ports) - set(t)
            if missing:
                raise ValueError(f"target {t} has no forward for port(s) {sorted(missing)}")
        self.assignments: dict[str, int] = {}
        #: (address, port) -> connections accepted, for the tests' assertions and the report
        self.connections: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task] = set()

    # ---- assignment ---------------------------------------------------------------------
    def _assign(self, address: str) -> int | None:
        with self._lock:
            if address in self.assignments:
                return self.assignments[address]
            used = set(self.assignments.values())
            free = [i for i in range(len(self.targets)) if i not in used]
            if not free:
                return None
            self.assignments[address] = free[0]
            log.info("gateway: %s -> target %d %s", address, free[0], self.targets[free[0]])
            return free[0]

    def release(self, address: str | None = None) -> None:
        """Forget one address's VM (or all): a new server on it gets the next free VM."""
        with self._lock:
            if address is None:
                self.assignments.clear()
            else:
                self.assignments.pop(address, None)

    def target_of(self, address: str) -> int | None:
        with self._lock:
            return self.assignments.get(address)

    # ---- life cycle ---------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "Gateway":
        socks = self._bind_all()        # in this thread, so a bind error raises here
        ready = threading.Event()
        errors: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                for sock, address, port in socks:
                    server = loop.run_until_complete(asyncio.start_server(
                        lambda r, w, a=address, p=port: self._handle(r, w, a, p), sock=sock))
                    self._servers.append(server)
            except BaseException as e:  # noqa: BLE001 - reported to start()
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="openstack-vm-gateway", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("gateway did not start")
        if errors:
            for sock, *_ in socks:
                sock.close()
            raise errors[0]
        return self

    def _bind_all(self) -> list[tuple[socket.socket, str, int]]:
        socks: list[tuple[socket.socket, str, int]] = []
        try:
            for address in self.addresses:
                for port in self.ports:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        sock.bind((address, port))
                    except OSError as e:
                        sock.close()
                        raise OSError(e.errno, f"gateway cannot listen on {address}:{port}: {e.strerror}") from None
                    sock.listen(64)
                    sock.setblocking(False)
                    socks.append((sock, address, port))
        except BaseException:
            for sock, *_ in socks:
                sock.close()
            raise
        return socks

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:   # already closed
            pass
        thread.join(15)
        self._loop = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- forwarding ---------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      address: str, port: int) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            with self._lock:
                self.connections[(address, port)] = self.connections.get((address, port), 0) + 1
            index = self._assign(address)
            if index is None:
                log.warning("gateway: no free VM for %s:%d; connection refused", address, port)
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.target_host, self.targets[index][port]), 10)
            except (OSError, asyncio.TimeoutError) as e:
                log.info("gateway: %s:%d -> %s:%d failed: %s", address, port, self.target_host,
                         self.targets[index][port], e)
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                _close(up_writer)
        except asyncio.CancelledError:
            pass
        finally:
            _close(writer)
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on (TLS close_notify and SSH EOF keep working)."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        _close(writer)


def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - already gone
        pass
