"""Real VMs for tests, made through the qemu driver, with a small SSH helper."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import threading
import time
import types
from pathlib import Path

TEST_CACHE = Path(os.environ.get("MACHINE_TEST_CACHE", "/var/tmp/machine-test-cache"))
#: never more VMs alive at once than this (each costs ~1 GB of host memory under TCG)
MAX_VMS = int(os.environ.get("MACHINE_TEST_MAX_VMS", "2"))
#: boot→SSH is 48–90 s under TCG, longer when the host is busy
SSH_DEADLINE = float(os.environ.get("MACHINE_TEST_SSH_DEADLINE", "420"))


def _log(msg: str) -> None:
    print(f"[vm-harness] {msg}", file=sys.stderr, flush=True)


def vm_capable() -> str | None:
    """None when real VMs can run here, else the reason to skip."""
    from machine.drivers.qemu import image

    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 not installed (apt-get install qemu-system-x86 qemu-utils)"
    if not shutil.which("qemu-img"):
        return "qemu-img not installed (apt-get install qemu-utils)"
    if image.cached_image(TEST_CACHE, True) is None and not shutil.which("mmdebstrap"):
        return "no cached test image and mmdebstrap is not installed"
    return None


def ensure_image(engine: bool = True):
    """Build the image into the shared cache, or reuse it (a lock guards concurrent runs)."""
    from machine.drivers.qemu import image

    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    paths = image.build_image(TEST_CACHE, engine=engine, log=_log)
    took = time.monotonic() - t0
    if took > 5:
        _log(f"built {'engine' if engine else 'base'} image in {took:.0f}s")
    return paths


def vm_store(tmp_path_factory, name: str = "vmstore") -> Path:
    """A fresh machine store whose cache/ is a symlink to the shared test cache."""
    root = Path(tmp_path_factory.mktemp(name))
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    link = root / "cache"
    if not link.exists():
        link.symlink_to(TEST_CACHE, target_is_directory=True)
    return root


class VM:
    """One machine in a store: its record, its driver, and an SSH helper."""

    def __init__(self, store, host, driver):
        self.store = store
        self.host = host
        self.driver = driver
        self._conn = None

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def dir(self) -> Path:
        return Path(self.driver.machine_dir)

    def save(self) -> None:
        if self.dir.is_dir():
            self.store.save(self.host)

    # ---- ssh ------------------------------------------------------------------
    def _open(self, deadline: float):
        ep = self.driver.ssh_endpoint()
        try:
            from machine import ssh
        except ImportError:  # before machine/ssh.py existed: plain paramiko
            return _ParamikoConn.wait(ep, deadline)
        return ssh.wait_for_ssh(ep, self.dir / "known_hosts", deadline_s=deadline, pin=True)

    def wait_ssh(self, deadline: float = SSH_DEADLINE) -> float:
        """Seconds until SSH answered (and a command ran)."""
        t0 = time.monotonic()
        self.close_ssh()
        self._conn = self._open(deadline)
        self.run("true")
        return time.monotonic() - t0

    def run(self, cmd: str, timeout: float = 120) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of cmd on the VM; reconnects once if the link dropped."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._open(60)
            try:
                r = self._conn.run(cmd, check=False, timeout=timeout)
                return r.exit_status, r.stdout, r.stderr
            except Exception:
                self.close_ssh()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close_ssh(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    # ---- lifecycle --------------------------------------------------------------
    def state(self):
        return self.driver.state()

    def stop(self):
        self.close_ssh()
        self.driver.stop()
        self.save()

    def start(self):
        self.driver.start()
        self.save()

    def kill(self):
        self.close_ssh()
        self.driver.kill()
        self.save()

    def remove(self):
        self.close_ssh()
        try:
            self.driver.remove()
        finally:
            self.store.remove(self.name)


def wait_ssh_parallel(vms) -> None:
    """Wait for SSH on several booting VMs at once (each gets .boot_seconds); raise the first error."""
    errors: list[BaseException] = []

    def wait(vm):
        try:
            vm.boot_seconds = vm.wait_ssh()
        except BaseException as e:  # re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=wait, args=(vm,)) for vm in vms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class VMPool:
    """VMs of one test store; `close()` removes every one of them.

    A VM created with standby=True (the shared one) is stopped, not removed, whenever room
    is needed — by another VM of the pool, or by a test that boots VMs of its own (see
    park_standby) — and started again by whoever asks for it next: on 2 cores an idle TCG
    guest still costs a third of a core.
    """

    #: every pool of this process, for park_standby_everywhere()
    instances: list["VMPool"] = []

    def __init__(self, store_path, max_vms: int = MAX_VMS):
        from machine.api import Machines

        self.api = Machines(store_path)
        self.store = self.api.store
        self.max_vms = max_vms
        self.vms: dict[str, VM] = {}
        self.standby: set[str] = set()
        self._lock = threading.Lock()
        VMPool.instances.append(self)
        atexit.register(self.close)

    def park_standby(self) -> None:
        """Stop the running standby VMs (their disks stay; ensure_running() boots them again)."""
        for name in sorted(self.standby):
            vm = self.vms.get(name)
            if vm is not None and vm.driver.pid():
                t0 = time.monotonic()
                vm.stop()
                _log(f"{name}: parked (stopped in {time.monotonic() - t0:.0f}s) to make room")

    @classmethod
    def park_standby_everywhere(cls) -> None:
        for pool in cls.instances:
            pool.park_standby()

    def ensure_running(self, vm: VM) -> VM:
        if not vm.driver.pid():
            with self._lock:
                if len(self.alive()) >= self.max_vms:
                    raise RuntimeError(f"harness limit: {self.max_vms} VMs at once (MACHINE_TEST_MAX_VMS)")
                vm.start()
            vm.boot_seconds = vm.wait_ssh()
            _log(f"{vm.name}: started again, ssh after {vm.boot_seconds:.0f}s")
        return vm

    def alive(self) -> list[VM]:
        return [vm for vm in self.vms.values() if vm.driver.pid()]

    def create(self, name: str, *, wait: bool = True, standby: bool = False, **options) -> VM:
        """Create (and boot) a VM through the driver, recording it as `machine create` would."""
        from machine.drivers.qemu import QemuDriver
        from machine.model import Host

        with self._lock:
            if len(self.alive()) >= self.max_vms:
                self.park_standby()
            if len(self.alive()) >= self.max_vms:
                raise RuntimeError(f"harness limit: {self.max_vms} VMs at once "
                                   f"(MACHINE_TEST_MAX_VMS); remove one first")
            # nothing a test boots may reach any address but loopback (give network_mode= to change it)
            options.setdefault("network_mode", "isolated")
            config = QemuDriver.Config.from_options(options, driver_name="qemu", machine_name=name)
            host = Host(name=name, driver_name="qemu", driver=config)
            self.store.reserve(name)
            driver = self.api.driver_for(host)  # the journal is saved with the record, as create does
            vm = VM(self.store, host, driver)
            self.vms[name] = vm
            if standby:
                self.standby.add(name)
            try:
                driver.pre_create_check()
                self.store.save(host)
                t0 = time.monotonic()
                driver.create()
                vm.create_seconds = time.monotonic() - t0
                self.store.save(host)
            except BaseException:
                self.remove(name)
                raise
        if wait:
            vm.boot_seconds = vm.wait_ssh()
            _log(f"{name}: ssh after {vm.boot_seconds:.0f}s")
        return vm

    def get(self, name: str) -> VM | None:
        return self.vms.get(name)

    def remove(self, name: str) -> None:
        self.standby.discard(name)
        vm = self.vms.pop(name, None)
        if vm is not None:
            vm.remove()

    def close(self) -> None:
        for name in list(self.vms):
            try:
                self.remove(name)
            except Exception as e:  # keep tearing the others down
                _log(f"teardown of {name} failed: {e}")


class _ParamikoConn:
    """Fallback SSH (plain paramiko) with the same run() shape as machine.ssh.Connection."""

    def __init__(self, client):
        self.client = client

    @classmethod
    def wait(cls, ep, deadline: float):
        import paramiko

        key = paramiko.Ed25519Key.from_private_key_file(ep.key_path)
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            c = paramiko.SSHClient()
            c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            try:
                c.connect(ep.host, ep.port, ep.user, pkey=key, timeout=5, banner_timeout=10,
                          auth_timeout=10, look_for_keys=False, allow_agent=False)
                return cls(c)
            except Exception as e:
                last = e
                c.close()
                time.sleep(1)
        raise TimeoutError(f"no SSH to {ep.host}:{ep.port} after {deadline:.0f}s: {last}")

    def run(self, cmd, check=False, timeout=None):
        _, out, err = self.client.exec_command(cmd, timeout=timeout)
        status = out.channel.recv_exit_status()
        return types.SimpleNamespace(exit_status=status, stdout=out.read().decode(), stderr=err.read().decode())

    def close(self):
        self.client.close()
