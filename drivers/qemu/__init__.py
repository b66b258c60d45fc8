"""Driver `qemu` (alias `kvm`): local virtual machines run by QEMU.

Per machine, in the machine folder:
    disk.qcow2      copy-on-write overlay on a cached base image
    seed.iso        NoCloud seed: hostname, the machine's SSH key, network config
    id_ed25519(.pub) the machine's SSH key (0600), made here
    qemu.pid        the daemonized QEMU's pid (VMs outlive the command that started them)
    qmp.sock        the QEMU monitor (state, ACPI power-down)
    console.log     the serial console

Networking: a user-mode NIC with SSH and the engine port forwarded from free
ports on 127.0.0.1. --qemu-network-mode nat (the default) gives the guest outbound
access through QEMU's user-mode NAT (the host is 10.0.2.2 from inside); isolated
(restrict=on) lets it reach nothing outside. With --qemu-network NAME, a second NIC
on a vde_switch shared by the machines given the same NAME, with a static private
address (see network.py).

Published ports: a per-machine agent (agent.py) follows the engine's events and
forwards every published container port to 127.0.0.1 (same port where free) through
QMP; `machine ports NAME` lists them; --qemu-forward-ports off opts out. UDP replies
from the guest need nat mode (user-mode networking drops guest UDP under restrict=on).

Shared folders: --qemu-share HOST_DIR[:GUEST_DIR][:ro], 9p, mounted at boot by the
seed (shares.py).

Without --qemu-image the machine boots the Debian "engine" image with Docker
Engine baked in, built offline with mmdebstrap on first use (see image.py).
Under nested or missing KVM the accelerator falls back to TCG (see process.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from ...driver import Capabilities, Claims, Driver, DriverConfig, setting
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

FILES = ("disk.qcow2", "seed.iso", "qemu.pid", "qmp.sock", "qmp-agent.sock", "console.log", "id_ed25519",
         "id_ed25519.pub", "agent.pid", "agent.log", "ports.json")
NETWORK_MODES = ("nat", "isolated")
_VERIFIED: set = set()     # local images whose checksum this process verified
CHECKSUM_ALGOS = {"sha256": 64, "sha512": 128}


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


def parse_checksum(value: str) -> tuple[str, str]:
    """'sha256:HEX' (or a bare sha256/sha512 hex digest) -> (algorithm, lowercase hex)."""
    v = (value or "").strip()
    algo, sep, digest = v.partition(":")
    if not sep:
        algo, digest = {64: "sha256", 128: "sha512"}.get(len(v), ""), v
    algo, digest = algo.lower(), digest.lower()
    if algo not in CHECKSUM_ALGOS or len(digest) != CHECKSUM_ALGOS[algo] or \
            any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"invalid --qemu-image-checksum {value!r}", "write sha256:HEX or sha512:HEX")
    return algo, digest


def file_digest(path: str | os.PathLike, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class QemuConfig(DriverConfig):
    memory: int = setting("Memory", 1024, flag="memory", env="QEMU_MEMORY", min=128, max=1024 * 1024,
                          help="memory in MiB", alias="--kvm-memory", group="Size")
    cpus: int = setting("CPU", 1, flag="cpus", env="QEMU_CPUS", min=1, max=256, help="number of virtual CPUs",
                        alias="--kvm-cpu-count", group="Size")
    disk_size: int = setting("DiskSize", 10, flag="disk-size", env="QEMU_DISK_SIZE", min=1, max=64 * 1024,
                             help="disk size in GB (thin: the overlay grows on use)", group="Size")
    image: str = setting("Image", "", flag="image", env="QEMU_IMAGE", group="Image",
                         help="disk image PATH or URL (a distro cloud image; a URL is downloaded once into the "
                              "store's cache). Default: the Debian image with Docker Engine baked in, built offline "
                              "on first use ('base' = the same without the engine)")
    accel: str = setting("Accel", "auto", flag="accel", env="QEMU_ACCEL", choices=("auto", "kvm", "tcg"),
                         help="accelerator: auto (KVM only with kvm_intel/kvm_amd loaded), kvm or tcg")
    image_checksum: str = setting("ImageChecksum", "", flag="image-checksum", env="QEMU_IMAGE_CHECKSUM",
                                  group="Image", help="sha256:HEX or sha512:HEX of --qemu-image, verified before use")
    network_mode: str = setting("NetworkMode", "nat", flag="network-mode", env="QEMU_NETWORK_MODE",
                                choices=NETWORK_MODES, group="Network",
                                help="nat: the guest reaches the outside through QEMU's user-mode NAT "
                                     "(docker pull works); isolated: it reaches nothing but its forwarded ports")
    forward_ports: str = setting("ForwardPorts", "on", flag="forward-ports", env="QEMU_FORWARD_PORTS",
                                 choices=("on", "off"), group="Network",
                                 help="forward ports published by containers to 127.0.0.1 (same port where free; "
                                      "see `machine ports NAME`)")
    shares: list = setting("Shares", [], flag="share", env="QEMU_SHARES", group="Shared folders",
                           help="share HOST_DIR with the VM at GUEST_DIR (default: the same path), 9p, mounted at "
                                "boot: HOST_DIR[:GUEST_DIR][:ro] (repeatable)")
    network: str = setting("Network", "", flag="network", env="QEMU_NETWORK", group="Network",
                           help="private network NAME shared by machines given the same NAME "
                                "(a vde_switch; each machine gets a static address on it)")
    ssh_user: str = setting("SSHUser", "root", flag="ssh-user", env="QEMU_SSH_USER", group="Access",
                            help="SSH user (for our images: root; for cloud images any user, created by cloud-init)")
    ssh_port: int = setting("SSHPort", 0, flag="ssh-port", env="QEMU_SSH_PORT", min=0, max=65535, group="Network",
                            help="forwarded SSH port on 127.0.0.1 (0: a free one)")
    engine_port: int = setting("EnginePort", 0, flag="engine-port", env="QEMU_ENGINE_PORT", min=0, max=65535,
                               group="Network", help="forwarded engine port on 127.0.0.1 (0: a free one)")
    stop_timeout: int = setting("StopTimeout", 60, flag="stop-timeout", env="QEMU_STOP_TIMEOUT", min=0, max=3600,
                                help="seconds to wait for an ACPI shutdown before killing")
    # state the driver keeps (not user-settable)
    ports_pinned: bool = setting("PortsPinned", False)
    image_path: str = setting("ImagePath", "")
    image_format: str = setting("ImageFormat", "")
    kernel: str = setting("Kernel", "")
    initrd: str = setting("Initrd", "")
    nat_mac: str = setting("NatMAC", "")
    private_mac: str = setting("PrivateMAC", "")
    private_ip_address: str = setting("PrivateIPAddress", "")
    instance_id: str = setting("InstanceID", "")
    #: the image boots with machine-seed instead of cloud-init (image.SEED_AGENT_CMDLINE)
    seed_agent: bool = setting("SeedAgent", False)
    accel_used: str = setting("AccelUsed", "")
    booted_at: str = setting("BootedAt", "")

    def validate(self, driver_name: str) -> None:
        user = self.ssh_user
        if not user or not user.isascii() or not user.replace("-", "").replace("_", "").isalnum() \
                or user[0].isdigit() or len(user) > 32:
            raise UsageError(f"invalid --qemu-ssh-user {user!r}", "use a plain login name")
        if self.ssh_port and self.ssh_port == self.engine_port:
            raise UsageError(f"--qemu-ssh-port and --qemu-engine-port are both {self.ssh_port}",
                             "give them different ports")
        if self.network:
            from .network import validate_name

            validate_name(self.network)
        from . import shares

        shares.parse_all(self.shares)
        if self.image_checksum:
            parse_checksum(self.image_checksum)

    def claims(self) -> Claims:
        return Claims(ports=frozenset(p for p in (self.ssh_port, self.engine_port) if p),
                      addresses=frozenset([self.private_ip_address] if self.private_ip_address else []))


class QemuDriver(Driver):
    name = "qemu"
    description = "local virtual machines run by QEMU (KVM where available, else TCG)"
    Config = QemuConfig
    capabilities = Capabilities(private_network=True, local_state=True)
    config: QemuConfig
    # ---- paths -----------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.machine_dir, name)

    def _network(self, name: str):
        from .network import Network

        return Network(self.ctx.shared_dir, name)

    def _peer_ports(self) -> set[int]:
        return {p for c in self.ctx.peer_claims() for p in c.ports}

    @property
    def disk_path(self) -> str:
        return self._path("disk.qcow2")

    @property
    def pid_path(self) -> str:
        return self._path("qemu.pid")

    @property
    def qmp_path(self) -> str:
        return _proc.short_socket_path(self.machine_dir, "qmp.sock")

    def _image_spec(self) -> tuple[str, str]:
        """('builtin', 'engine'|'base') | ('url', URL) | ('path', PATH)."""
        value = (self.config.image or "").strip()
        if not value:
            return "builtin", "engine"
        if value in BUILTIN_IMAGES and not os.path.exists(value):
            return "builtin", value
        if _is_url(value):
            return "url", value
        return "path", os.path.abspath(os.path.expanduser(value))

    # ---- pre-create ---------------------------------------------------------------
    def pre_create_check(self) -> None:
        """Everything that can fail before anything exists; creates nothing."""
        _proc.qemu_binary()
        _proc.qemu_img()
        disk_gb = self.config.disk_size
        _proc.choose_accel(self.config.accel)
        if self.config.network:
            if not shutil.which("vde_switch"):
                raise MachineError("vde_switch not found (needed for --qemu-network)", "apt-get install vde2")
        need = MIN_FREE_BYTES
        kind, value = self._image_spec()
        self._check_checksum_use(kind, value)
        if kind == "builtin":
            from . import image

            cached = image.cached_image(self.ctx.cache_dir, BUILTIN_IMAGES[value])
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
                self._verify_local(value)
        from . import shares

        shares.check_host_dirs(shares.parse_all(self.config.shares))
        free = _free_bytes(self.machine_dir)
        if free < need:
            raise MachineError(
                f"not enough free disk space in {self.machine_dir}: {free / GiB:.1f} GiB free, "
                f"{need / GiB:.1f} GiB needed", "free some space or use another --storage-path")
        self._check_pinned_ports()

    def _verify_local(self, disk: str) -> None:
        """--qemu-image-checksum of a local image file (once per process for the same file)."""
        if not self.config.image_checksum:
            return
        algo, want = parse_checksum(self.config.image_checksum)
        st = os.stat(disk)
        key = (disk, st.st_size, st.st_mtime_ns, algo, want)
        if key in _VERIFIED:
            return
        self.ctx.report(f"verifying {algo} of {disk}")
        got = file_digest(disk, algo)
        if got != want:
            raise MachineError(f"checksum mismatch for {disk}: {algo} is {got}, expected {want}",
                               "check --qemu-image-checksum, or the file is damaged")
        _VERIFIED.add(key)

    def _check_checksum_use(self, kind: str, value: str) -> None:
        if self.config.image_checksum and (kind not in ("url", "path") or os.path.isdir(value)):
            raise UsageError("--qemu-image-checksum needs --qemu-image FILE or URL",
                             "built-in images and image folders are not checked")

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
        ssh_port, engine_port = self.config.ssh_port, self.config.engine_port
        for flag, port in (("--qemu-ssh-port", ssh_port), ("--qemu-engine-port", engine_port)):
            if not port:
                continue
            if port < 1024 and os.geteuid() != 0:
                raise UsageError(f"{flag} {port} needs root", "pick a port above 1023")
            if not _ports.port_free(port) or port in self._peer_ports():
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

    def _download(self, url: str, checksum: tuple[str, str] | None = None) -> str:
        """Fetch url once into STORE/cache/downloads/<sha256 of url> (.xz/.gz unpacked on the way).

        The checksum (of the file as published, i.e. before unpacking) is verified on
        download and checked against the recorded digest when the cached copy is reused;
        a cached copy that no longer matches is fetched again once.
        """
        from filelock import FileLock

        d = Path(self.ctx.cache_dir) / "downloads"
        d.mkdir(parents=True, exist_ok=True)
        dest = d / hashlib.sha256(url.encode()).hexdigest()
        meta_path = Path(str(dest) + ".json")
        with FileLock(str(dest) + ".lock"):
            if dest.is_file():
                if checksum is None:
                    return str(dest)
                try:
                    recorded = json.loads(meta_path.read_text()).get(checksum[0])
                except (OSError, ValueError):
                    recorded = None
                if recorded == checksum[1]:
                    return str(dest)
                self.ctx.report(f"cached {url} does not match {checksum[0]}:{checksum[1][:12]}…; downloading again")
                dest.unlink()
            self.ctx.report(f"downloading {url}")
            digests = self._fetch(url, dest, d)
            if checksum is not None and digests[checksum[0]] != checksum[1]:
                dest.unlink()
                raise MachineError(f"checksum mismatch for {url}: {checksum[0]} is {digests[checksum[0]]}, "
                                   f"expected {checksum[1]}",
                                   "check --qemu-image-checksum against the distribution's SUMS file")
            atomic_write(meta_path, json.dumps(dict(digests, url=url)).encode(), mode=PUBLIC_FILE)
        return str(dest)

    @staticmethod
    def _fetch(url: str, dest: Path, d: Path) -> dict:
        import urllib.request

        path = urlparse(url).path.lower()
        if path.endswith(".xz"):
            import lzma
            unpack = lzma.LZMADecompressor()
        elif path.endswith(".gz"):
            import zlib
            unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            unpack = None
        hashes = {a: hashlib.new(a) for a in CHECKSUM_ALGOS}
        tmp = d / f".{dest.name}.{os.getpid()}.part"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    for h in hashes.values():
                        h.update(chunk)
                    out.write(unpack.decompress(chunk) if unpack else chunk)
            os.replace(tmp, dest)
        except (OSError, EOFError, ValueError) as e:   # lzma.LZMAError and zlib.error are OSError/ValueError kin
            raise MachineError(f"cannot download {url}: {getattr(e, 'reason', None) or e}",
                               "check the URL, or download it yourself and pass --qemu-image PATH") from None
        except Exception as e:
            if type(e).__name__ in ("LZMAError", "error"):
                raise MachineError(f"cannot unpack {url}: {e}") from None
            raise
        finally:
            if tmp.exists():
                tmp.unlink()
        return {a: h.hexdigest() for a, h in hashes.items()}

    def _resolve_image(self) -> None:
        """Record what the machine boots: ImagePath/ImageFormat and Kernel/Initrd (or none)."""
        kind, value = self._image_spec()
        self._check_checksum_use(kind, value)
        from . import image

        kernel = initrd = ""
        agent = False
        if kind == "builtin":
            paths = image.build_image(self.ctx.cache_dir, engine=BUILTIN_IMAGES[value], log=self.ctx.report)
            disk, kernel, initrd = str(paths.disk), str(paths.kernel), str(paths.initrd)
            agent = image.has_seed_agent(paths.dir)
        elif kind == "url":
            disk = self._download(value, parse_checksum(self.config.image_checksum)
                                  if self.config.image_checksum else None)
        elif os.path.isdir(value):
            disk, kernel, initrd = self._kernel_dir(value)
            agent = image.has_seed_agent(value)
        else:
            if not os.path.isfile(value):
                raise UsageError(f"image not found: {value}", "pass an existing disk image or an http(s) URL")
            disk = value
            self._verify_local(disk)
        info = _proc.image_info(disk)
        fmt = info.get("format") or "raw"
        if fmt not in ("qcow2", "raw"):
            raise UsageError(f"image {disk} is {fmt}", "convert it: qemu-img convert -O qcow2 IN OUT")
        c = self.config
        c.image_path, c.image_format, c.kernel, c.initrd = disk, fmt, kernel, initrd
        c.seed_agent = agent

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
        self.config.ssh_key_path = path
        self.journal.record("ssh-key", path)
        return (pub.decode() + f" machine@{self.machine_name}")

    # ---- ports -------------------------------------------------------------------------------
    def _pick_ports(self, *, pinned: bool) -> None:
        """Keep the recorded ports if still free, else (unless pinned) choose new ones. Port lock held."""
        others = self._peer_ports()
        c = self.config
        current = [c.ssh_port, c.engine_port]
        keep = [p if p and p not in others and _ports.port_free(p) else 0 for p in current]
        if pinned:
            for what, flag, want, ok in zip(("SSH", "engine"), ("--qemu-ssh-port", "--qemu-engine-port"),
                                            current, keep):
                if want and not ok:
                    raise MachineError(f"port 127.0.0.1:{want} ({what}) is in use",
                                       f"free it, or recreate the machine without {flag}")
        fresh = iter(_ports.free_ports(keep.count(0), exclude=others | set(keep)))
        c.ssh_port, c.engine_port = (port or next(fresh) for port in keep)

    # ---- lifecycle ------------------------------------------------------------------------------
    def create(self) -> None:
        c = self.config
        Path(self.machine_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        c.ip_address = LOOPBACK
        c.ports_pinned = bool(c.ssh_port or c.engine_port)
        self._resolve_image()
        self._check_disk_size(c.image_path, c.disk_size)
        public_key = self._make_key()
        c.nat_mac = _mac(self.machine_name + "nat")
        private_cidr = None
        if c.network:
            c.private_mac = _mac(self.machine_name + "priv")
            ip, private_cidr = self._network(c.network).lease(self.machine_name, c.private_mac)
            self.journal.record("network-lease", c.network, address=ip)
            c.private_ip_address = ip
        size = c.disk_size * GiB
        _proc.create_overlay(c.image_path, c.image_format, self.disk_path, size)
        os.chmod(self.disk_path, 0o600)
        self.journal.record("disk", self.disk_path)
        from . import seed, shares

        c.instance_id = f"{self.machine_name}-{secrets.token_hex(4)}"
        seed.write_seed(self._path("seed.iso"), instance_id=c.instance_id,
                        hostname=self.machine_name, public_key=public_key, ssh_user=c.ssh_user,
                        nat_mac=c.nat_mac, private_mac=c.private_mac or None, private_cidr=private_cidr,
                        bootcmd=shares.bootcmds(shares.parse_all(c.shares)))
        self.journal.record("seed", self._path("seed.iso"))
        self._boot(first=True)

    @property
    def agent_qmp_path(self) -> str:
        return _proc.short_socket_path(self.machine_dir, "qmp-agent.sock")

    def _spec(self) -> _proc.VMSpec:
        from . import shares

        c = self.config
        accel = _proc.choose_accel(c.accel)
        c.accel_used = accel
        share_list = shares.parse_all(c.shares)
        shares.check_host_dirs(share_list)
        vde = self._network(c.network).ensure_switch() if c.network else None
        return _proc.VMSpec(
            restrict=c.network_mode == "isolated", agent_qmp_socket=self.agent_qmp_path,
            shares=[(shares.tag(i), s.host, s.readonly) for i, s in enumerate(share_list)],
            name=self.machine_name, disk=self.disk_path, seed=self._path("seed.iso"),
            qmp_socket=self.qmp_path, pid_file=self.pid_path, console_log=self._path("console.log"),
            ssh_port=c.ssh_port, engine_port=c.engine_port, nat_mac=c.nat_mac, memory=c.memory, cpus=c.cpus,
            accel=accel, kernel=c.kernel or None, initrd=c.initrd or None, append=self._kernel_append(),
            vde_socket=vde, private_mac=c.private_mac or None)

    def _kernel_append(self) -> str:
        if not self.config.seed_agent:
            return _proc.KERNEL_APPEND
        from .image import SEED_AGENT_CMDLINE

        return f"{_proc.KERNEL_APPEND} {SEED_AGENT_CMDLINE}"

    def _boot(self, first: bool = False) -> None:
        for stale in (self.pid_path, self.qmp_path, self.agent_qmp_path):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        c = self.config
        with self.ctx.lock(_ports.LOCK_NAME):
            self._pick_ports(pinned=c.ports_pinned)
            spec = self._spec()
            argv = _proc.build_argv(spec, _proc.qemu_binary())
            try:
                pid = _proc.launch(argv, self.pid_path)
            except MachineError as e:
                if "host forwarding rule" in e.message and not c.ports_pinned:
                    # lost a race for a port: choose again once
                    c.ssh_port = c.engine_port = 0
                    self._pick_ports(pinned=False)
                    pid = _proc.launch(_proc.build_argv(self._spec(), _proc.qemu_binary()), self.pid_path)
                else:
                    raise
        for old in self.journal.of_kind("qemu-process"):
            self.journal.forget("qemu-process", old["id"])
        self.journal.record("qemu-process", pid, ssh_port=c.ssh_port, engine_port=c.engine_port)
        c.booted_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._start_agent(pid)

    # ---- published ports ----------------------------------------------------------------------
    def _start_agent(self, qemu_pid: int | None = None) -> None:
        """Launch the port-forward agent for the running QEMU (unless --qemu-forward-ports off)."""
        from . import agent

        if self.config.forward_ports != "on":
            return
        qemu_pid = qemu_pid or self.pid()
        if not qemu_pid:
            return
        avoid = self._peer_ports() | {self.config.ssh_port, self.config.engine_port}
        agent.spawn(self.machine_dir, self.agent_qmp_path, self.config.engine_port, qemu_pid, avoid)

    def published_ports(self) -> list[dict]:
        """Container ports forwarded to 127.0.0.1 now: [{proto, host_port, guest_port, containers}]."""
        from . import agent

        return list(agent.read_state(self.machine_dir).get("forwards", []))

    def agent_running(self) -> bool:
        from . import agent

        return agent.agent_pid(self.machine_dir) is not None

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

    def stopped_reason(self) -> str | None:
        # The process alone (no QMP: the monitor takes one client at a time and `ls` may be using it).
        if self.pid():
            return None
        return f"its QEMU process is gone (the guest's console: {self._path('console.log')})"

    def start(self) -> None:
        if self.pid():
            if self.state() == State.PAUSED:
                _proc.qmp(self.qmp_path, "cont")
            if not self.agent_running() and os.path.exists(self.agent_qmp_path):
                self._start_agent()   # the agent died (or was killed): bring it back
            return
        if not os.path.isfile(self.disk_path):
            raise MachineError(f"machine {self.machine_name} has no disk ({self.disk_path})",
                               f"remove it and create it again: machine rm -f {self.machine_name}")
        self._boot()

    def _stop_agent(self) -> None:
        from . import agent

        agent.stop(self.machine_dir)

    def stop(self) -> None:
        self._stop_agent()
        pid = self.pid()
        if not pid:
            self._cleanup_runtime()
            return
        timeout = self.config.stop_timeout
        try:
            _proc.qmp(self.qmp_path, "system_powerdown", timeout=5.0)
        except MachineError:
            timeout = min(timeout, 5)
        if not _proc.wait_gone(pid, timeout, must_contain=self.disk_path):
            _proc.kill_pid(pid, must_contain=self.disk_path)
        self._cleanup_runtime()

    def kill(self) -> None:
        self._stop_agent()
        pid = self.pid()
        if pid:
            _proc.kill_pid(pid, must_contain=self.disk_path)
        self._cleanup_runtime()

    def _cleanup_runtime(self) -> None:
        for p in (self.pid_path, self.qmp_path, self.agent_qmp_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def remove(self) -> None:
        """Kill QEMU, release the network address, delete the files. Idempotent."""
        self.kill()
        if self.config.network:
            try:
                self._network(self.config.network).release(self.machine_name)
            except UsageError:
                pass
        for name in FILES:
            try:
                os.unlink(self._path(name))
            except FileNotFoundError:
                pass
        _proc.remove_short_socket(self.machine_dir, "qmp.sock")
        _proc.remove_short_socket(self.machine_dir, "qmp-agent.sock")

    # ---- addresses ------------------------------------------------------------------------------
    def ip(self) -> str:
        return LOOPBACK

    def engine_endpoint(self, engine_port: int) -> tuple[str, int]:
        return LOOPBACK, int(self.config.engine_port or engine_port)

    def addresses(self) -> list[str]:
        return [LOOPBACK] + ([self.config.private_ip_address] if self.config.private_ip_address else [])

    def private_address(self) -> str | None:
        return self.config.private_ip_address or None
