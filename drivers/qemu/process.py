"""QEMU processes: binary lookup, accelerator choice, argv, launch, liveness, QMP.

QEMU runs daemonized (-daemonize -pidfile) so a VM outlives the `machine`
command that started it; its state is read back from the pid (checked against
/proc/PID/cmdline so a recycled pid is never mistaken for the VM) and from the
QMP monitor on a unix socket.

The QMP client here is a few lines of JSON over the socket rather than
qemu.qmp's sync shim: that shim drives an asyncio loop per thread and cannot run
inside an already running loop, while `ls` probes machines from threads and the
Python API may be called from async code.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import MachineError

QEMU_BINARY = "qemu-system-x86_64"
QEMU_MISSING = MachineError(f"{QEMU_BINARY} not found", "apt-get install qemu-system-x86 qemu-utils")
ACCELS = ("auto", "kvm", "tcg")
UNIX_PATH_MAX = 107


# ---- binaries --------------------------------------------------------------

def qemu_binary() -> str:
    exe = shutil.which(QEMU_BINARY)
    if not exe:
        raise MachineError(QEMU_MISSING.message, QEMU_MISSING.hint)
    return exe


def qemu_img() -> str:
    exe = shutil.which("qemu-img")
    if not exe:
        raise MachineError("qemu-img not found", "apt-get install qemu-utils")
    return exe


# ---- accelerator ------------------------------------------------------------

def kvm_available(sys_module: str = "/sys/module", dev_kvm: str = "/dev/kvm") -> bool:
    """Real KVM: the kvm_intel or kvm_amd module and a usable /dev/kvm.

    /dev/kvm alone is not enough: nested PVM (kvm_pvm) provides one too, and
    stock distribution kernels hang under it.
    """
    if not any(os.path.isdir(os.path.join(sys_module, m)) for m in ("kvm_intel", "kvm_amd")):
        return False
    return os.access(dev_kvm, os.R_OK | os.W_OK)


def choose_accel(requested: str | None, *, sys_module: str = "/sys/module",
                 dev_kvm: str = "/dev/kvm") -> str:
    req = (requested or "auto").lower()
    if req not in ACCELS:
        raise MachineError(f"invalid --qemu-accel {requested!r}", "use auto, kvm or tcg")
    if req == "auto":
        return "kvm" if kvm_available(sys_module, dev_kvm) else "tcg"
    if req == "kvm" and not os.access(dev_kvm, os.R_OK | os.W_OK):
        raise MachineError(f"--qemu-accel kvm: {dev_kvm} is missing or not accessible",
                           "use --qemu-accel tcg, or load kvm_intel/kvm_amd and check permissions")
    return req


def accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]


# ---- sockets with short paths -------------------------------------------------

def short_socket_path(directory: str | os.PathLike, name: str, reserve: int = 0) -> str:
    """directory/name, or a short stand-in under /tmp when that is too long for AF_UNIX."""
    p = os.path.join(str(directory), name)
    if len(p) + reserve <= UNIX_PATH_MAX:
        return p
    digest = hashlib.sha256(os.path.abspath(str(directory)).encode()).hexdigest()[:16]
    base = Path(f"/tmp/machine-{os.getuid()}")
    base.mkdir(mode=0o700, exist_ok=True)
    return str(base / f"{digest}-{name}")


def remove_short_socket(directory: str | os.PathLike, name: str) -> None:
    p = short_socket_path(directory, name, reserve=10_000)  # always the stand-in's name
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            os.unlink(p)
        except (FileNotFoundError, IsADirectoryError):
            pass


# ---- pids --------------------------------------------------------------------

def read_pid(path: str | os.PathLike) -> int | None:
    try:
        text = Path(path).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _zombie(pid: int) -> bool:
    """Exited and waiting to be reaped — all threads gone, not only the leader.

    A multi-threaded QEMU's main thread turns "Z" while its other threads still
    hold the process's files (the forwarded ports) open; it is dead only when no
    other task is left.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
            return False
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except (OSError, IndexError):
        return False


def pid_alive(pid: int | None, must_contain: str | None = None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _zombie(pid):
        return False
    if must_contain and must_contain not in _cmdline(pid):
        return False  # the pid was recycled by another program
    return True


def wait_gone(pid: int, timeout: float, must_contain: str | None = None) -> bool:
    """Wait until pid has fully exited (its sockets closed), up to timeout.

    The identity check (`must_contain`) is made once, up front: an exiting process
    loses its cmdline (exit_mm) before it closes its files (exit_files), so
    checking the cmdline while waiting would report "gone" while its forwarded
    ports are still bound.
    """
    if not pid_alive(pid, must_contain):
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def kill_pid(pid: int, timeout: float = 10.0, must_contain: str | None = None) -> None:
    if not pid_alive(pid, must_contain):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_gone(pid, timeout):
        raise MachineError(f"process {pid} did not exit after SIGKILL")


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---- QMP -----------------------------------------------------------------------

class QMPError(MachineError):
    pass


class QMP:
    """A minimal synchronous QMP client: greeting, qmp_capabilities, commands."""

    def __init__(self, path: str, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file = None

    def __enter__(self) -> "QMP":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise QMPError(f"cannot reach the QEMU monitor at {self.path}: {e.strerror or e}") from None
        self._sock = s
        self._file = s.makefile("rb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError("unexpected QMP greeting")
        self.command("qmp_capabilities")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for obj in (self._file, self._sock):
            try:
                if obj is not None:
                    obj.close()
            except OSError:
                pass
        self._file = self._sock = None

    def _read(self) -> dict:
        try:
            line = self._file.readline()
        except OSError as e:
            raise QMPError(f"QEMU monitor: {e}") from None
        if not line:
            raise QMPError("QEMU monitor closed the connection")
        return json.loads(line)

    def command(self, name: str, **arguments):
        msg: dict = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise QMPError(f"QEMU monitor: {e}") from None
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QMPError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
            # an asynchronous event: skip it


def qmp(path: str, name: str, timeout: float = 5.0, **arguments):
    with QMP(path, timeout) as mon:
        return mon.command(name, **arguments)


# ---- argv -----------------------------------------------------------------------

#: the kernel command line of a folder image (its root filesystem is the whole disk)
KERNEL_APPEND = "root=/dev/vda rw console=ttyS0"


@dataclass
class VMSpec:
    name: str
    disk: str
    seed: str
    qmp_socket: str
    pid_file: str
    console_log: str
    ssh_port: int
    engine_port: int
    nat_mac: str
    memory: int = 1024
    cpus: int = 1
    accel: str = "tcg"
    kernel: str | None = None
    initrd: str | None = None
    append: str = KERNEL_APPEND
    vde_socket: str | None = None
    private_mac: str | None = None
    restrict: bool = True
    disk_format: str = "qcow2"
    #: a second QMP monitor for the port-forward agent (one client per monitor at a time)
    agent_qmp_socket: str | None = None
    #: shared folders: (mount tag, host folder, read-only)
    shares: list = field(default_factory=list)
    extra: list = field(default_factory=list)


def _opt(value: str) -> str:
    """A value inside a QEMU -opt list: commas are doubled."""
    return str(value).replace(",", ",,")


def build_argv(spec: VMSpec, binary: str = QEMU_BINARY) -> list[str]:
    netdev = f"user,id=nat0,restrict={'on' if spec.restrict else 'off'}"
    netdev += f",hostfwd=tcp:127.0.0.1:{int(spec.ssh_port)}-:22"
    netdev += f",hostfwd=tcp:127.0.0.1:{int(spec.engine_port)}-:2376"
    argv = [binary, "-name", f"{spec.name},process=machine-{spec.name}"]
    argv += accel_args(spec.accel)
    argv += ["-smp", str(int(spec.cpus)), "-m", str(int(spec.memory))]
    argv += ["-nodefaults", "-display", "none", "-vga", "none",
             "-chardev", f"file,id=console0,path={spec.console_log},append=on",
             "-serial", "chardev:console0"]
    if spec.kernel:
        argv += ["-kernel", spec.kernel]
        if spec.initrd:
            argv += ["-initrd", spec.initrd]
        argv += ["-append", spec.append]
    argv += ["-drive", f"file={spec.disk},if=virtio,format={spec.disk_format},discard=unmap",
             "-drive", f"file={spec.seed},if=virtio,format=raw,readonly=on",
             "-netdev", netdev,
             "-device", f"virtio-net-pci,netdev=nat0,mac={spec.nat_mac}"]
    for i, (tag, path, readonly) in enumerate(spec.shares):
        # 9p in QEMU itself (no daemon); security_model=none: files keep the host user's ownership
        argv += ["-fsdev", f"local,id=fs{i},path={_opt(path)},security_model=none"
                           + (",readonly=on" if readonly else ""),
                 "-device", f"virtio-9p-pci,fsdev=fs{i},mount_tag={_opt(tag)}"]
    if spec.vde_socket:
        argv += ["-netdev", f"vde,id=priv0,sock={spec.vde_socket}",
                 "-device", f"virtio-net-pci,netdev=priv0,mac={spec.private_mac}"]
    argv += ["-device", "virtio-rng-pci",
             "-qmp", f"unix:{_opt(spec.qmp_socket)},server=on,wait=off",
             "-pidfile", spec.pid_file, "-daemonize"]
    if spec.agent_qmp_socket:
        argv += ["-qmp", f"unix:{_opt(spec.agent_qmp_socket)},server=on,wait=off"]
    argv += list(spec.extra)
    return argv


def launch(argv: list[str], pid_file: str, timeout: float = 120.0) -> int:
    """Start QEMU daemonized; return its pid. QEMU's own error becomes one line."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              start_new_session=True)
    except FileNotFoundError:
        raise MachineError(QEMU_MISSING.message, QEMU_MISSING.hint) from None
    except subprocess.TimeoutExpired:
        raise MachineError(f"qemu did not finish starting within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise MachineError(f"qemu failed to start: {qemu_error(proc.stderr)}")
    pid = read_pid(pid_file)
    if not pid:
        raise MachineError("qemu started but wrote no pid file", pid_file)
    return pid


def qemu_error(stderr: str) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    if not lines:
        return "no error output"
    line = lines[-1]
    # "qemu-system-x86_64: -drive file=...: Could not open ..." -> keep what matters
    if line.startswith(QEMU_BINARY + ":"):
        line = line[len(QEMU_BINARY) + 1:].strip()
    return line


# ---- qemu-img --------------------------------------------------------------------

def image_info(path: str) -> dict:
    proc = subprocess.run([qemu_img(), "info", "--output=json", path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    if proc.returncode != 0:
        raise MachineError(f"not a disk image: {path}", qemu_error(proc.stderr).replace("qemu-img: ", ""))
    return json.loads(proc.stdout)


def create_overlay(base: str, base_format: str, out: str, size_bytes: int) -> None:
    proc = subprocess.run([qemu_img(), "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base,
                           out, str(int(size_bytes))], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise MachineError(f"cannot create disk {out}", qemu_error(proc.stderr).replace("qemu-img: ", ""))
