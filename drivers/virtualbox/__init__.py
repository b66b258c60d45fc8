"""Driver `virtualbox`: local VMs run by Oracle VirtualBox, all through one `VBoxManage` runner.

Per machine, in the machine folder: the VM's own folder (VirtualBox's .vbox and logs, from
`createvm --basefolder`), disk.vdi (a clone of the cached VDI of --virtualbox-image, grown to
--virtualbox-disk-size), seed.iso (NoCloud: the machine's SSH key, hostname, a static address on
the host-only network; built by the qemu driver's seed module) attached as a DVD, id_ed25519.

NIC 1: NAT with SSH and the engine forwarded from free ports on 127.0.0.1 (docker-machine's
NAT rule for SSH, plus one for the engine). NIC 2: host-only (--virtualbox-hostonly-cidr) for
traffic between machines (swarm). The VM is journaled by UUID the moment `createvm` returns.

VirtualBox cannot run on the project's CI machines: this driver is verified against fixtures of
VBoxManage's documented output and a stand-in VBoxManage (tests/virtualbox), not a running
VirtualBox. On a machine with VirtualBox, run tests/virtualbox/test_virtualbox_real.py.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from ...driver import Capabilities, Claims, Driver, DriverConfig, setting
from ...errors import MachineError, NotFound, UsageError
from ...model import State

LOOPBACK = "127.0.0.1"
GUEST_SSH_PORT = 22
GUEST_ENGINE_PORT = 2376
NIC_TYPES = ("Am79C970A", "Am79C973", "82540EM", "82543GC", "82545EM", "virtio")
PROMISC = ("deny", "allow-vms", "allow-all")
PORT_LOCK = "virtualbox-ports"
STATES = {"running": State.RUNNING, "poweroff": State.STOPPED, "aborted": State.STOPPED,
          "saved": State.SAVED, "paused": State.PAUSED, "stopping": State.STOPPING,
          "starting": State.STARTING, "restoring": State.STARTING, "saving": State.STOPPING,
          "gurumeditation": State.ERROR, "stuck": State.ERROR}
VTX_ERRORS = ("VERR_VMX_NO_VMX", "VERR_SVM_NO_SVM", "VERR_VMX_MSR_ALL_VMX_DISABLED", "VERR_SVM_DISABLED",
              "VERR_NEM_NOT_AVAILABLE", "VT-x is not available", "AMD-V is not available",
              "VT-x is disabled", "AMD-V is disabled")


def _home_share() -> str:
    return "/Users" if os.uname().sysname == "Darwin" else "/home"


class VirtualBoxConfig(DriverConfig):
    memory: int = setting("Memory", 1024, flag="memory", env="VIRTUALBOX_MEMORY_SIZE", min=128, max=1024 * 1024,
                          group="Size", help="memory in MB")
    cpus: int = setting("CPU", 1, flag="cpu-count", env="VIRTUALBOX_CPU_COUNT", min=1, max=64, group="Size",
                        help="virtual CPUs")
    disk_size: int = setting("DiskSize", 20000, flag="disk-size", env="VIRTUALBOX_DISK_SIZE", min=1024,
                             max=2 * 1024 * 1024, group="Size", help="disk in MB (the image's disk is grown to it)")
    image: str = setting("Image", "", flag="image", env="VIRTUALBOX_IMAGE", group="Image",
                         help="disk image PATH or URL, as for the qemu driver (a distro cloud image with "
                              "cloud-init; converted once to VDI). Default: Debian 12's generic cloud image")
    boot2docker_url: str = setting("Boot2DockerURL", "", flag="boot2docker-url",
                                   env="VIRTUALBOX_BOOT2DOCKER_URL", group="Image",
                                   help="not supported: boot2docker is gone; use --virtualbox-image")
    ostype: str = setting("OSType", "Debian_64", flag="ostype", group="Image",
                          help="VirtualBox OS type of the image (VBoxManage list ostypes)")
    hostonly_cidr: str = setting("HostOnlyCIDR", "192.168.99.1/24", flag="hostonly-cidr",
                                 env="VIRTUALBOX_HOSTONLY_CIDR", group="Network",
                                 help="host's address and prefix on the host-only network")
    hostonly_nictype: str = setting("HostOnlyNicType", "82540EM", flag="hostonly-nictype",
                                    env="VIRTUALBOX_HOSTONLY_NIC_TYPE", choices=NIC_TYPES, group="Network",
                                    help="host-only NIC type")
    hostonly_nicpromisc: str = setting("HostOnlyPromiscMode", "deny", flag="hostonly-nicpromisc",
                                       env="VIRTUALBOX_HOSTONLY_NIC_PROMISC", choices=PROMISC, group="Network",
                                       help="host-only NIC promiscuous mode")
    hostonly_no_dhcp: bool = setting("HostOnlyNoDHCP", False, flag="hostonly-no-dhcp", group="Network",
                                     help="accepted for docker-machine scripts (addresses are static anyway)")
    nat_nictype: str = setting("NatNicType", "82540EM", flag="nat-nictype", env="VIRTUALBOX_NAT_NICTYPE",
                               choices=NIC_TYPES, group="Network", help="NAT NIC type")
    no_dns_proxy: bool = setting("NoDNSProxy", False, flag="no-dns-proxy", env="VIRTUALBOX_NO_DNS_PROXY",
                                 group="Network", help="do not proxy the guest's DNS through the NAT engine")
    host_dns_resolver: bool = setting("HostDNSResolver", False, flag="host-dns-resolver",
                                      env="VIRTUALBOX_HOST_DNS_RESOLVER", group="Network",
                                      help="resolve the guest's DNS with the host's resolver")
    ssh_port: int = setting("SSHPort", 0, flag="ssh-port", env="VIRTUALBOX_SSH_PORT", min=0, max=65535,
                            group="Network", help="forwarded SSH port on 127.0.0.1 (0: a free one)")
    engine_port: int = setting("EnginePort", 0, flag="engine-port", env="VIRTUALBOX_ENGINE_PORT", min=0,
                               max=65535, group="Network", help="forwarded engine port on 127.0.0.1 (0: a free one)")
    no_share: bool = setting("NoShare", False, flag="no-share", env="VIRTUALBOX_NO_SHARE", group="Share",
                             help="do not share the home folder with the VM")
    share_folder: str = setting("ShareFolder", "", flag="share-folder", env="VIRTUALBOX_SHARE_FOLDER",
                                group="Share", help="HOSTDIR:NAME to share instead of the home folder")
    no_vtx_check: bool = setting("NoVTXCheck", False, flag="no-vtx-check", env="VIRTUALBOX_NO_VTX_CHECK",
                                 help="skip the check for hardware virtualization (VT-x/AMD-V) before create")
    ui_type: str = setting("UIType", "headless", flag="ui-type", env="VIRTUALBOX_UI_TYPE",
                           choices=("headless", "gui", "sdl", "separate"), help="how VirtualBox shows the VM")
    ssh_user: str = setting("SSHUser", "docker", flag="ssh-user", env="VIRTUALBOX_SSH_USER", group="Access",
                            help="user cloud-init creates with the machine's key (sudo)")
    stop_timeout: int = setting("StopTimeout", 60, flag="stop-timeout", env="VIRTUALBOX_STOP_TIMEOUT", min=0,
                                max=3600, help="seconds an ACPI shutdown may take before the VM is powered off")
    # ---- state the driver keeps
    uuid: str = setting("UUID", "")
    ports_pinned: bool = setting("PortsPinned", False)
    hostonly_if: str = setting("HostOnlyInterface", "")
    private_ip_address: str = setting("PrivateIPAddress", "")
    nat_mac: str = setting("NatMAC", "")
    hostonly_mac: str = setting("HostOnlyMAC", "")
    disk_path: str = setting("DiskPath", "")

    def validate(self, driver_name: str) -> None:
        from .network import parse_cidr

        if self.boot2docker_url:
            raise UsageError("--virtualbox-boot2docker-url is not supported (boot2docker is gone)",
                             "pass a cloud image with cloud-init: --virtualbox-image PATH|URL")
        parse_cidr(self.hostonly_cidr)
        if self.share_folder and ":" not in self.share_folder:
            raise UsageError(f"invalid --virtualbox-share-folder {self.share_folder!r}", "write HOSTDIR:NAME")
        if self.ssh_port and self.ssh_port == self.engine_port:
            raise UsageError(f"--virtualbox-ssh-port and --virtualbox-engine-port are both {self.ssh_port}",
                             "give them different ports")
        user = self.ssh_user
        if not user or not user.replace("-", "").replace("_", "").isalnum() or user[0].isdigit():
            raise UsageError(f"invalid --virtualbox-ssh-user {user!r}", "use a plain login name")

    def claims(self) -> Claims:
        return Claims(ports=frozenset(p for p in (self.ssh_port, self.engine_port) if p),
                      addresses=frozenset([self.private_ip_address] if self.private_ip_address else []))


def vtx_available(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """True/False from the CPU flags (vmx/svm); None where the host does not say (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", text, re.M))


class VirtualBoxDriver(Driver):
    name = "virtualbox"
    description = "local VMs run by Oracle VirtualBox (VBoxManage)"
    Config = VirtualBoxConfig
    capabilities = Capabilities(private_network=True, local_state=True)
    config: VirtualBoxConfig
    #: tests point this at /proc/cpuinfo fixtures
    cpuinfo = "/proc/cpuinfo"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        from .runner import Runner

        self.vbox = Runner()

    def _path(self, name: str) -> str:
        return os.path.join(self.machine_dir, name)

    def _peer_ports(self) -> set[int]:
        return {p for c in self.ctx.peer_claims() for p in c.ports}

    # ---- pre-create -------------------------------------------------------------------------
    def pre_create_check(self) -> None:
        """VBoxManage present, VT-x/AMD-V, the name free in VirtualBox, the image, pinned ports; creates nothing."""
        from . import image, parse

        version = self.vbox.version()         # first: without VirtualBox nothing else matters
        if parse.version_tuple(version) and parse.version_tuple(version) < (5, 0, 0):
            raise MachineError(f"VirtualBox {version} is too old", "install VirtualBox 5.0 or newer")
        if not self.config.no_vtx_check and vtx_available(self.cpuinfo) is False:
            raise MachineError("this computer has no hardware virtualization (VT-x/AMD-V) available",
                               "enable it in the firmware settings, or pass --virtualbox-no-vtx-check")
        if self.machine_name in parse.list_vms(self.vbox.run("list", "vms")):
            raise UsageError(f"a VirtualBox VM named {self.machine_name!r} is already registered",
                             f"pick another machine name, or remove that VM: VBoxManage unregistervm "
                             f"{self.machine_name} --delete")
        image.check(self.config.image)
        self._check_pinned_ports()

    def _check_pinned_ports(self) -> None:
        from ..qemu import ports as _ports

        for flag, port in (("--virtualbox-ssh-port", self.config.ssh_port),
                           ("--virtualbox-engine-port", self.config.engine_port)):
            if port and (not _ports.port_free(port) or port in self._peer_ports()):
                raise UsageError(f"{flag} {port}: port 127.0.0.1:{port} is in use",
                                 f"pick another port or leave {flag} out to get a free one")

    # ---- create -------------------------------------------------------------------------------
    def create(self) -> None:
        from . import image, network, parse
        from ..qemu import seed
        from ..vsphere import guest

        c = self.config
        Path(self.machine_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        c.ip_address = LOOPBACK
        c.ports_pinned = bool(c.ssh_port or c.engine_port)
        kind, src = image.source(c.image)
        src_path = image.download(src, self.ctx.cache_dir, self.ctx.report) if kind == "url" else src
        base = image.base_vdi(self.vbox, src_path, self.ctx.cache_dir, self.ctx.report)
        c.ssh_key_path, public_key = guest.make_key(self.machine_dir, f"machine@{self.machine_name}")
        self.journal.record("ssh-key", c.ssh_key_path)

        iface = network.parse_cidr(c.hostonly_cidr)
        with self.ctx.lock(network.LOCK):
            c.hostonly_if = network.ensure_hostonlyif(self.vbox, iface, self.ctx.report)
            taken = {a for cl in self.ctx.peer_claims() for a in cl.addresses}
            c.private_ip_address = network.pick_address(iface, taken)
        c.nat_mac, c.hostonly_mac = network.mac(), network.mac()

        self.ctx.report(f"creating VirtualBox VM {self.machine_name}")
        out = self.vbox.run("createvm", "--name", self.machine_name, "--ostype", c.ostype,
                            "--basefolder", str(self.machine_dir), "--register")
        c.uuid = parse.created_uuid(out)
        if not c.uuid:
            c.uuid = parse.list_vms(self.vbox.run("list", "vms")).get(self.machine_name, "")
        if not c.uuid:
            raise MachineError(f"VBoxManage createvm gave no UUID for {self.machine_name}: {out.strip()[:200]}")
        self.journal.record("vm", c.uuid, name=self.machine_name)

        c.disk_path = self._path("disk.vdi")
        self.vbox.run("clonemedium", "disk", base, c.disk_path, "--format", "VDI", timeout=3600)
        self.journal.record("disk", c.disk_path)
        self.vbox.run("modifymedium", "disk", c.disk_path, "--resize", str(c.disk_size))

        seed_path = self._path("seed.iso")
        prefix = iface.network.prefixlen
        seed.write_seed(seed_path, instance_id=f"{self.machine_name}-{secrets.token_hex(4)}",
                        hostname=self.machine_name, public_key=public_key, ssh_user=c.ssh_user,
                        nat_mac=c.nat_mac, private_mac=c.hostonly_mac,
                        private_cidr=f"{c.private_ip_address}/{prefix}")
        self.journal.record("seed", seed_path)

        self.vbox.run("modifyvm", c.uuid, "--memory", str(c.memory), "--cpus", str(c.cpus),
                      "--acpi", "on", "--ioapic", "on", "--rtcuseutc", "on", "--hpet", "on",
                      "--firmware", "bios", "--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none",
                      "--audio", "none", "--usb", "off", "--uart1", "off",
                      "--nic1", "nat", "--nictype1", c.nat_nictype, "--cableconnected1", "on",
                      "--macaddress1", network.vbox_mac(c.nat_mac),
                      "--natdnsproxy1", "off" if c.no_dns_proxy else "on",
                      "--natdnshostresolver1", "on" if c.host_dns_resolver else "off",
                      "--nic2", "hostonly", "--hostonlyadapter2", c.hostonly_if, "--nictype2", c.hostonly_nictype,
                      "--nicpromisc2", c.hostonly_nicpromisc, "--cableconnected2", "on",
                      "--macaddress2", network.vbox_mac(c.hostonly_mac))
        self.vbox.run("storagectl", c.uuid, "--name", "SATA", "--add", "sata", "--controller", "IntelAhci",
                      "--portcount", "2", "--hostiocache", "on")
        self.vbox.run("storageattach", c.uuid, "--storagectl", "SATA", "--port", "0", "--device", "0",
                      "--type", "hdd", "--medium", c.disk_path)
        self.vbox.run("storageattach", c.uuid, "--storagectl", "SATA", "--port", "1", "--device", "0",
                      "--type", "dvddrive", "--medium", seed_path)
        for name, host_dir in self._shares():
            self.vbox.run("sharedfolder", "add", c.uuid, "--name", name, "--hostpath", host_dir, "--automount")
        self._boot()

    def _shares(self) -> list[tuple[str, str]]:
        c = self.config
        if c.no_share:
            return []
        if c.share_folder:
            host_dir, _, name = c.share_folder.rpartition(":")
            return [(name, host_dir)]
        home = _home_share()
        return [(home.strip("/").lower().replace("/", "-") or "home", home)] if os.path.isdir(home) else []

    # ---- ports and boot -----------------------------------------------------------------------
    def _pick_ports(self) -> bool:
        """Keep the recorded forwards if free, else (unless pinned) choose new ones; True if they changed."""
        from ..qemu import ports as _ports

        c = self.config
        others = self._peer_ports()
        current = [c.ssh_port, c.engine_port]
        keep = [p if p and p not in others and _ports.port_free(p) else 0 for p in current]
        if c.ports_pinned:
            for what, flag, want, ok in zip(("SSH", "engine"), ("--virtualbox-ssh-port", "--virtualbox-engine-port"),
                                            current, keep):
                if want and not ok:
                    raise MachineError(f"port 127.0.0.1:{want} ({what}) is in use",
                                       f"free it, or recreate the machine without {flag}")
        fresh = iter(_ports.free_ports(keep.count(0), exclude=others | set(keep)))
        c.ssh_port, c.engine_port = (port or next(fresh) for port in keep)
        return [c.ssh_port, c.engine_port] != current

    def _set_forwards(self, first: bool) -> None:
        c = self.config
        if not first:
            for rule in ("ssh", "docker"):
                self.vbox.run("modifyvm", c.uuid, "--natpf1", "delete", rule, check=False)
        self.vbox.run("modifyvm", c.uuid,
                      "--natpf1", f"ssh,tcp,{LOOPBACK},{c.ssh_port},,{GUEST_SSH_PORT}",
                      "--natpf1", f"docker,tcp,{LOOPBACK},{c.engine_port},,{GUEST_ENGINE_PORT}")

    def _boot(self, first: bool = True) -> None:
        from .runner import VBoxError

        with self.ctx.lock(PORT_LOCK):
            changed = self._pick_ports()
            if first or changed:
                if not first:
                    self.ctx.report(f"forwarding SSH from 127.0.0.1:{self.config.ssh_port}, "
                                    f"the engine from 127.0.0.1:{self.config.engine_port}")
                self._set_forwards(first)
            self.ctx.report(f"starting {self.machine_name}")
            try:
                self.vbox.run("startvm", self.config.uuid, "--type", self.config.ui_type, timeout=300)
            except VBoxError as e:
                if any(code in e.stderr for code in VTX_ERRORS):
                    raise MachineError("VirtualBox cannot start the VM: hardware virtualization (VT-x/AMD-V) "
                                       "is not available", "enable it in the firmware settings; on a VM host, "
                                       "enable nested virtualization") from None
                raise

    # ---- state and lifecycle ----------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        from . import parse
        from .runner import VBoxError

        if not self.config.uuid:
            raise NotFound(f"machine {self.machine_name} has no VirtualBox VM",
                           f"remove it: machine rm -f {self.machine_name}")
        try:
            return parse.machinereadable(self.vbox.run("showvminfo", self.config.uuid, "--machinereadable"))
        except VBoxError as e:
            if "VBOX_E_OBJECT_NOT_FOUND" in e.stderr or "Could not find a registered machine" in e.stderr:
                raise NotFound(f"the VirtualBox VM of machine {self.machine_name} no longer exists",
                               f"remove the machine: machine rm -f {self.machine_name}") from None
            raise

    def state(self) -> State:
        return STATES.get(self.info().get("VMState", ""), State.NONE)

    def start(self) -> None:
        s = self.state()
        if s == State.RUNNING:
            return
        if s == State.PAUSED:
            self.vbox.run("controlvm", self.config.uuid, "resume")
            return
        self._boot(first=False)

    def stop(self) -> None:
        """ACPI power button, then power off after --virtualbox-stop-timeout."""
        s = self.state()
        if s in (State.STOPPED, State.SAVED, State.NONE):
            return
        self.vbox.run("controlvm", self.config.uuid, "acpipowerbutton", check=False)
        end = time.monotonic() + self.config.stop_timeout
        while time.monotonic() < end:
            if self.state() != State.RUNNING and self.state() != State.STOPPING:
                return
            time.sleep(1)
        self.ctx.report(f"{self.machine_name} did not shut down in {self.config.stop_timeout}s; powering off")
        self.kill()

    def kill(self) -> None:
        if self.state() in (State.RUNNING, State.PAUSED, State.STOPPING, State.STARTING, State.ERROR):
            self.vbox.run("controlvm", self.config.uuid, "poweroff")

    # ---- remove ---------------------------------------------------------------------------------------
    def remove(self) -> None:
        """Power off and unregister (with its files) every journaled VM; delete disk and seed. Idempotent."""
        from .runner import VBoxError

        vms = self.journal.of_kind("vm")
        if vms or self.config.uuid:
            try:
                self.vbox.program
            except MachineError:
                if vms:
                    raise
        for entry in reversed(vms):
            uuid = entry["id"]
            try:
                self.vbox.run("controlvm", uuid, "poweroff", check=False)
                self.vbox.run("unregistervm", uuid, "--delete")
            except VBoxError as e:
                if "VBOX_E_OBJECT_NOT_FOUND" not in e.stderr and "Could not find a registered machine" not in e.stderr:
                    raise
            self.journal.forget("vm", uuid)
        for entry in list(self.journal):
            if entry["kind"] in ("disk", "seed", "ssh-key"):
                for p in (entry["id"], entry["id"] + ".pub") if entry["kind"] == "ssh-key" else (entry["id"],):
                    try:
                        os.unlink(p)
                    except FileNotFoundError:
                        pass
                self.journal.forget(entry["kind"], entry["id"])
        self.config.uuid = ""

    # ---- addresses --------------------------------------------------------------------------------------
    def _docker_machine_record(self) -> bool:
        # docker-machine's VMs have no loopback forward: clients reach them at the host-only IPAddress
        return not self.config.engine_port and bool(self.config.ip_address) and self.config.ip_address != LOOPBACK

    def ip(self) -> str:
        return self.config.ip_address if self._docker_machine_record() else LOOPBACK

    def engine_endpoint(self, engine_port: int) -> tuple[str, int]:
        if self._docker_machine_record():
            return self.config.ip_address, engine_port
        return LOOPBACK, int(self.config.engine_port or engine_port)

    def addresses(self) -> list[str]:
        return [LOOPBACK] + ([self.config.private_ip_address] if self.config.private_ip_address else [])

    def private_address(self) -> str | None:
        return self.config.private_ip_address or None
