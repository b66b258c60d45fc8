"""Driver `qemu` (alias `kvm`): local virtual machines run by QEMU.

Per machine, in the machine folder:
    disk.qcow2      copy-on-write overlay on a cached base image
    seed.iso        NoCloud seed: hostname, the machine's SSH key, network config
    id_ed25519(.pub) the machine's SSH key (0600), made here
    qemu.pid        the daemonized QEMU's pid (VMs outlive the command that started them)
    qmp.sock        the QEMU monitor (state, ACPI power-down)
    console.log     the serial console

Networking: a user-mode NIC (restrict=on: the guest reaches nothing outside) with
SSH and the engine port forwarded from free ports on 127.0.0.1, plus, with
--qemu-network NAME, a second NIC on a vde_switch shared by the machines given
the same NAME, with a static private address (see network.py).

Without --qemu-image the machine boots the Debian "engine" image with Docker
Engine baked in, built offline with mmdebstrap on first use (see image.py).
Under nested or missing KVM the accelerator falls back to TCG (see process.py).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from ...driver import Capabilities, Driver, Option
from ...errors import MachineError, UsageError
from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write
from ...model import State
from . import ports as _ports
from . import process as _proc

LOOPBACK = "127.0.0.1"
GUEST_SSH_PORT = 22
GUEST_ENGINE_PORT = 2376
GiB = 1024 ** 3
MIN_FREE_BYTES = 1 * GiB          # working room for the overlay's first writes
IMAGE_BUILD_BYTES = 4 * GiB       # rootfs + raw disk while building the engine image
URL_SCHEMES = ("http", "https", "ftp", "file")
BUILTIN_IMAGES = {"engine": True, "base": False}

FILES = ("disk.qcow2", "seed.iso", "qemu.pid", "qmp.sock", "console.log", "id_ed25519", "id_ed25519.pub")


def _mac(seed: str) -> str:
    """A locally administered QEMU-range MAC derived from random bytes + seed."""
    h = hashlib.sha256((seed + secrets.token_hex(8)).encode()).digest()
    return "52:54:00:%02x:%02x:%02x" % (h[0], h[1], h[2])


def _is_url(value: str) -> bool:
    return urlparse(value).scheme in URL_SCHEMES and "://" in value


def _free_bytes(path: str | os.PathLike) -> int:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


class QemuDriver(Driver):
    name = "qemu"
    aliases = ("kvm",)
    description = "local virtual machines run by QEMU (KVM where available, else TCG)"
    default_ssh_user = "root"
    capabilities = Capabilities(private_network=True)
    options = (
        Option("memory", int, 1024, "memory in MiB", envvar="QEMU_MEMORY", key="Memory"),
        Option("cpus", int, 1, "number of virtual CPUs", envvar="QEMU_CPUS", key="CPU"),
        Option("disk-size", int, 10, "disk size in GB (thin: the overlay grows on use)",
               envvar="QEMU_DISK_SIZE", key="DiskSize"),
        Option("image", str, None, "disk image PATH or URL (a distro cloud image; a URL is downloaded once "
               "into the store's cache). Default: the Debian image with Docker Engine baked in, built offline "
               "on first use ('base' = the same without the engine)", envvar="QEMU_IMAGE", key="Image"),
        Option("accel", str, "auto", "accelerator: auto (KVM only with kvm_intel/kvm_amd loaded), kvm or tcg",
               envvar="QEMU_ACCEL", key="Accel", choices=("auto", "kvm", "tcg")),
        Option("network", str, None, "private network NAME shared by machines given the same NAME "
               "(a vde_switch; each machine gets a static address on it)", envvar="QEMU_NETWORK", key="Network"),
        Option("ssh-user", str, "root", "SSH user (for our images: root; for cloud images any user, "
               "created by cloud-init)", envvar="QEMU_SSH_USER", key="SSHUser"),
        Option("ssh-port", int, 0, "forwarded SSH port on 127.0.0.1 (0: a free one)",
               envvar="QEMU_SSH_PORT", key="SSHPort"),
        Option("engine-port", int, 0, "forwarded engine port on 127.0.0.1 (0: a free one)",
               envvar="QEMU_ENGINE_PORT", key="EnginePort"),
        Option("stop-timeout", int, 60, "seconds to wait for an ACPI shutdown before killing",
               envvar="QEMU_STOP_TIMEOUT", key="StopTimeout"),
    )

    # ---- paths -----------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.machine_dir, name)

    @property
    def disk_path(self) -> str:
        return self._path("disk.qcow2")

    @property
    def pid_path(self) -> str:
        return self._path("qemu.pid")

    @property
    def qmp_path(self) -> str:
        return _proc.short_socket_path(self.machine_dir, "qmp.sock")

    def _store(self):
        from ...store import Store

        return Store(self.store_path)

    # ---- option checks ---------------------------------------------------------
    def _int_opt(self, name: str, low: int, high: int | None = None) -> int:
        opt = next(o for o in self.options if o.name == name)
        raw = self.opt(name, opt.default)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise UsageError(f"invalid {opt.flag(self.name)} {raw!r}", "give a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise UsageError(f"invalid {opt.flag(self.name)} {value}", f"must be {bound}")
        return value

    def _image_spec(self) -> tuple[str, str]:
        """('builtin', 'engine'|'base') | ('url', URL) | ('path', PATH)."""
        value = (self.opt("image") or "").strip()
        if not value:
            return "builtin", "engine"
        if value in BUILTIN_IMAGES and not os.path.exists(value):
            return "builtin", value
        if _is_url(value):
            return "url", value
        return "path", os.path.abspath(os.path.expanduser(value))

    def _ssh_user(self) -> str:
        user = str(self.opt("ssh-user") or "root")
        if not user.replace("-", "").replace("_", "").isalnum() or user[0].isdigit() or len(user) > 32:
            raise UsageError(f"invalid --qemu-ssh-user {user!r}", "use a plain login name")
        return user

    # ---- pre-create ---------------------------------------------------------------
    def pre_create_check(self) -> None:
        """Everything that can fail before anything exists; creates nothing."""
        _proc.qemu_binary()
        _proc.qemu_img()
        self._int_opt("memory", 128, 1024 * 1024)
        self._int_opt("cpus", 1, 256)
        disk_gb = self._int_opt("disk-size", 1, 64 * 1024)
        self._int_opt("stop-timeout", 0, 3600)
        _proc.choose_accel(self.opt("accel"))
        self._ssh_user()
        network = self.opt("network")
        if network:
            from .network import validate_name

            validate_name(network)
            if not shutil.which("vde_switch"):
                raise MachineError("vde_switch not found (needed for --qemu-network)", "apt-get install vde2")
        need = MIN_FREE_BYTES
        kind, value = self._image_spec()
        if kind == "builtin":
            from . import image

            cached = image.cached_image(self._store(), BUILTIN_IMAGES[value])
            if cached is None:
                for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs")):
                    if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
                        raise MachineError(f"the default image is not built yet and {tool} is missing",
                                           f"apt-get install {pkg}, or pass --qemu-image PATH|URL")
                need += IMAGE_BUILD_BYTES
            else:
                self._check_disk_size(str(cached.disk), disk_gb)
        elif kind == "path":
            if os.path.isdir(value):
                self._kernel_dir(value)
                self._check_disk_size(os.path.join(value, "base.qcow2"), disk_gb)
            elif not os.path.isfile(value):
                raise UsageError(f"image not found: {value}", "pass an existing disk image or an http(s) URL")
            else:
                self._check_disk_size(value, disk_gb)
        free = _free_bytes(self.store_path)
        if free < need:
            raise MachineError(
                f"not enough free disk space in {self.store_path}: {free / GiB:.1f} GiB free, "
                f"{need / GiB:.1f} GiB needed", "free some space or use another --storage-path")
        self._check_pinned_ports()

    def _check_disk_size(self, disk: str, disk_gb: int) -> None:
        info = _proc.image_info(disk)
        virtual = int(info.get("virtual-size") or 0)
        if virtual < 1024 * 1024:
            raise UsageError(f"not a disk image: {disk} ({info.get('format')}, {virtual} bytes)",
                             "pass a bootable disk image (qcow2 or raw)")
        if virtual > disk_gb * GiB:
            raise UsageError(f"--qemu-disk-size {disk_gb} is smaller than the image ({-(-virtual // GiB)} GB)",
                             f"use --qemu-disk-size {-(-virtual // GiB)} or more")

    def _check_pinned_ports(self) -> None:
        ssh_port = self._int_opt("ssh-port", 0, 65535)
        engine_port = self._int_opt("engine-port", 0, 65535)
        if ssh_port and ssh_port == engine_port:
            raise UsageError(f"--qemu-ssh-port and --qemu-engine-port are both {ssh_port}",
                             "give them different ports")
        for flag, port in (("--qemu-ssh-port", ssh_port), ("--qemu-engine-port", engine_port)):
            if not port:
                continue
            if port < 1024 and os.geteuid() != 0:
                raise UsageError(f"{flag} {port} needs root", "pick a port above 1023")
            if not _ports.port_free(port) or port in _ports.recorded_ports(self.store_path, self.machine_name):
                raise UsageError(f"{flag} {port}: port 127.0.0.1:{port} is in use",
                                 f"pick another port or leave {flag} out to get a free one")

    # ---- images ------------------------------------------------------------------------
    @staticmethod
    def _kernel_dir(d: str) -> tuple[str, str, str]:
        disk, kernel, initrd = (os.path.join(d, n) for n in ("base.qcow2", "vmlinuz", "initrd.img"))
        missing = [n for n in (disk, kernel, initrd) if not os.path.isfile(n)]
        if missing:
            raise UsageError(f"image folder {d} lacks {', '.join(os.path.basename(m) for m in missing)}",
                             "a folder image holds base.qcow2, vmlinuz and initrd.img (see `machine image ls`)")
        return disk, kernel, initrd

    def _download(self, url: str) -> str:
        """Fetch url once into STORE/cache/downloads/<sha256 of url>."""
        import urllib.request

        from filelock import FileLock

        d = self._store().cache_dir / "downloads"
        d.mkdir(parents=True, exist_ok=True)
        dest = d / hashlib.sha256(url.encode()).hexdigest()
        with FileLock(str(dest) + ".lock"):
            if dest.is_file():
                return str(dest)
            tmp = d / f".{dest.name}.{os.getpid()}.part"
            try:
                with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                    shutil.copyfileobj(resp, out, 1 << 20)
                os.replace(tmp, dest)
            except OSError as e:
                raise MachineError(f"cannot download {url}: {getattr(e, 'reason', None) or e}",
                                   "check the URL, or download it yourself and pass --qemu-image PATH") from None
            finally:
                if tmp.exists():
                    tmp.unlink()
        return str(dest)

    def _resolve_image(self) -> None:
        """Record what the machine boots: ImagePath/ImageFormat and Kernel/Initrd (or none)."""
        kind, value = self._image_spec()
        kernel = initrd = ""
        if kind == "builtin":
            from . import image

            paths = image.build_image(self._store(), engine=BUILTIN_IMAGES[value])
            disk, kernel, initrd = str(paths.disk), str(paths.kernel), str(paths.initrd)
        elif kind == "url":
            disk = self._download(value)
        elif os.path.isdir(value):
            disk, kernel, initrd = self._kernel_dir(value)
        else:
            if not os.path.isfile(value):
                raise UsageError(f"image not found: {value}", "pass an existing disk image or an http(s) URL")
            disk = value
        info = _proc.image_info(disk)
        fmt = info.get("format") or "raw"
        if fmt not in ("qcow2", "raw"):
            raise UsageError(f"image {disk} is {fmt}", "convert it: qemu-img convert -O qcow2 IN OUT")
        self.config.update(ImagePath=disk, ImageFormat=fmt, Kernel=kernel, Initrd=initrd)

    # ---- ssh key --------------------------------------------------------------------------
    def _make_key(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        path = self._path("id_ed25519")
        atomic_write(path, priv, mode=PRIVATE_FILE)
        atomic_write(path + ".pub", pub + f" machine@{self.machine_name}\n".encode(), mode=PUBLIC_FILE)
        self.config["SSHKeyPath"] = path
        self.journal.record("ssh-key", path)
        return (pub.decode() + f" machine@{self.machine_name}")

    # ---- ports -------------------------------------------------------------------------------
    def _pick_ports(self, *, pinned: bool) -> None:
        """Keep the recorded ports if still free, else (unless pinned) choose new ones. Port lock held."""
        others = _ports.recorded_ports(self.store_path, self.machine_name)
        current = [int(self.config.get(k) or 0) for k in _ports.PORT_KEYS]
        keep = [p if p and p not in others and _ports.port_free(p) else 0 for p in current]
        if pinned:
            for key, want, ok in zip(_ports.PORT_KEYS, current, keep):
                if want and not ok:
                    flag = "--qemu-ssh-port" if key == "SSHPort" else "--qemu-engine-port"
                    raise MachineError(f"port 127.0.0.1:{want} ({key}) is in use",
                                       f"free it, or recreate the machine without {flag}")
        fresh = iter(_ports.free_ports(keep.count(0), exclude=others | set(keep)))
        for key, port in zip(_ports.PORT_KEYS, keep):
            self.config[key] = port or next(fresh)

    # ---- lifecycle ------------------------------------------------------------------------------
    def create(self) -> None:
        Path(self.machine_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.config["IPAddress"] = LOOPBACK
        self.config["SSHUser"] = self._ssh_user()
        self.config["PortsPinned"] = bool(self.config.get("SSHPort") or self.config.get("EnginePort"))
        self._resolve_image()
        self._check_disk_size(self.config["ImagePath"], self._int_opt("disk-size", 1))
        public_key = self._make_key()
        self.config["NatMAC"] = _mac(self.machine_name + "nat")
        network = self.opt("network")
        private_cidr = None
        if network:
            from .network import Network

            self.config["PrivateMAC"] = _mac(self.machine_name + "priv")
            ip, private_cidr = Network(self.store_path, network).lease(self.machine_name, self.config["PrivateMAC"])
            self.journal.record("network-lease", network, address=ip)
            self.config["PrivateIPAddress"] = ip
        size = self._int_opt("disk-size", 1) * GiB
        _proc.create_overlay(self.config["ImagePath"], self.config["ImageFormat"], self.disk_path, size)
        os.chmod(self.disk_path, 0o600)
        self.journal.record("disk", self.disk_path)
        from . import seed

        self.config["InstanceID"] = f"{self.machine_name}-{secrets.token_hex(4)}"
        seed.write_seed(self._path("seed.iso"), instance_id=self.config["InstanceID"],
                        hostname=self.machine_name, public_key=public_key, ssh_user=self.config["SSHUser"],
                        nat_mac=self.config["NatMAC"], private_mac=self.config.get("PrivateMAC"),
                        private_cidr=private_cidr)
        self.journal.record("seed", self._path("seed.iso"))
        self._boot(first=True)

    def _spec(self) -> _proc.VMSpec:
        accel = _proc.choose_accel(self.opt("accel"))
        self.config["AccelUsed"] = accel
        vde = None
        if self.config.get("Network"):
            from .network import Network

            vde = Network(self.store_path, self.config["Network"]).ensure_switch()
        return _proc.VMSpec(
            name=self.machine_name, disk=self.disk_path, seed=self._path("seed.iso"),
            qmp_socket=self.qmp_path, pid_file=self.pid_path, console_log=self._path("console.log"),
            ssh_port=int(self.config["SSHPort"]), engine_port=int(self.config["EnginePort"]),
            nat_mac=self.config["NatMAC"], memory=self._int_opt("memory", 128), cpus=self._int_opt("cpus", 1),
            accel=accel, kernel=self.config.get("Kernel") or None, initrd=self.config.get("Initrd") or None,
            vde_socket=vde, private_mac=self.config.get("PrivateMAC"))

    def _boot(self, first: bool = False) -> None:
        for stale in (self.pid_path, self.qmp_path):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        with _ports.port_lock(self.store_path):
            self._pick_ports(pinned=bool(self.config.get("PortsPinned")))
            spec = self._spec()
            argv = _proc.build_argv(spec, _proc.qemu_binary())
            try:
                pid = _proc.launch(argv, self.pid_path)
            except MachineError as e:
                if "host forwarding rule" in e.message and not self.config.get("PortsPinned"):
                    # lost a race for a port: choose again once
                    self.config["SSHPort"] = self.config["EnginePort"] = 0
                    self._pick_ports(pinned=False)
                    pid = _proc.launch(_proc.build_argv(self._spec(), _proc.qemu_binary()), self.pid_path)
                else:
                    raise
        for old in self.journal.of_kind("qemu-process"):
            self.journal.forget("qemu-process", old["id"])
        self.journal.record("qemu-process", pid, ssh_port=self.config["SSHPort"],
                            engine_port=self.config["EnginePort"])
        self.config["BootedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S")

    def pid(self) -> int | None:
        pid = _proc.read_pid(self.pid_path)
        return pid if _proc.pid_alive(pid, must_contain=self.disk_path) else None

    def state(self) -> State:
        pid = self.pid()
        if not pid:
            return State.STOPPED
        try:
            status = _proc.qmp(self.qmp_path, "query-status", timeout=3.0)
        except MachineError:
            return State.RUNNING  # the process is there; the monitor may be busy with another client
        s = str(status.get("status", ""))
        if s == "running":
            return State.RUNNING
        if s in ("paused", "suspended", "io-error", "watchdog", "debug", "colo"):
            return State.PAUSED
        if s in ("shutdown", "postmigrate", "save-vm"):
            return State.STOPPING if s == "shutdown" else State.SAVED
        if s in ("prelaunch", "inmigrate", "restore-vm", "finish-migrate"):
            return State.STARTING
        if s in ("internal-error", "guest-panicked"):
            return State.ERROR
        return State.RUNNING

    def start(self) -> None:
        if self.pid():
            if self.state() == State.PAUSED:
                _proc.qmp(self.qmp_path, "cont")
            return
        if not os.path.isfile(self.disk_path):
            raise MachineError(f"machine {self.machine_name} has no disk ({self.disk_path})",
                               f"remove it and create it again: machine rm -f {self.machine_name}")
        self._boot()

    def stop(self) -> None:
        pid = self.pid()
        if not pid:
            self._cleanup_runtime()
            return
        timeout = self._int_opt("stop-timeout", 0)
        try:
            _proc.qmp(self.qmp_path, "system_powerdown", timeout=5.0)
        except MachineError:
            timeout = min(timeout, 5)
        if not _proc.wait_gone(pid, timeout, must_contain=self.disk_path):
            _proc.kill_pid(pid, must_contain=self.disk_path)
        self._cleanup_runtime()

    def kill(self) -> None:
        pid = self.pid()
        if pid:
            _proc.kill_pid(pid, must_contain=self.disk_path)
        self._cleanup_runtime()

    def _cleanup_runtime(self) -> None:
        for p in (self.pid_path, self.qmp_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def remove(self) -> None:
        """Kill QEMU, release the network address, delete the files. Idempotent."""
        self.kill()
        network = self.config.get("Network")
        if network:
            from .network import Network

            try:
                Network(self.store_path, network).release(self.machine_name)
            except UsageError:
                pass
        for name in FILES:
            try:
                os.unlink(self._path(name))
            except FileNotFoundError:
                pass
        _proc.remove_short_socket(self.machine_dir, "qmp.sock")

    # ---- addresses ------------------------------------------------------------------------------
    def ip(self) -> str:
        return LOOPBACK

    def engine_endpoint(self, engine_port: int) -> tuple[str, int]:
        return LOOPBACK, int(self.config.get("EnginePort") or engine_port)

    def addresses(self) -> list[str]:
        out = [LOOPBACK]
        if self.config.get("PrivateIPAddress"):
            out.append(str(self.config["PrivateIPAddress"]))
        return out

    def private_address(self) -> str | None:
        return self.config.get("PrivateIPAddress") or None
