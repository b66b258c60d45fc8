"""Driver `vsphere` (alias `vmwarevsphere`): VMs cloned from a template on vCenter or ESXi (pyVmomi).

create: log in → find datacenter, template, pool, datastore, folder, networks → clone (the VM is
journaled by its instance UUID before the clone task starts, with its moref once the task
returns) → reconfigure CPU, memory, disk, NICs, cloud-init (guestinfo, or a seed ISO uploaded
to the datastore and journaled) and --vsphere-cfgparam → power on → wait for the address guest
tools report. Every step is a vSphere task waited with a deadline and reported as progress.
remove: power off and destroy every journaled VM, delete every journaled datastore file;
what is already gone is skipped.

docker-machine's --vmwarevsphere-* flags are accepted as hidden aliases. Its boot2docker ISO
flow is gone: clone a template with cloud-init and VMware Tools instead.
"""
from __future__ import annotations

import secrets
import uuid

from ...driver import Capabilities, Driver, DriverConfig, setting
from ...errors import MachineError, NotFound, UsageError
from ...model import State

A = "--vmwarevsphere-"
GiB = 1024 ** 3


class VSphereConfig(DriverConfig):
    # ---- where vCenter is and who logs in
    vcenter: str = setting("IP", "", flag="vcenter", env="VSPHERE_VCENTER", alias=A + "vcenter", group="vCenter",
                           help="vCenter (or ESXi) host name or address")
    vcenter_port: int = setting("Port", 443, flag="vcenter-port", env="VSPHERE_VCENTER_PORT", min=1, max=65535,
                                alias=A + "vcenter-port", group="vCenter", help="vCenter HTTPS port")
    # env VSPHERE_USERNAME/VSPHERE_PASSWORD are read at use (session.py), never copied into the record
    username: str = setting("Username", "", flag="username", alias=A + "username", group="vCenter",
                            help="vSphere user [env VSPHERE_USERNAME, read at use and never stored]")
    password: str = setting("Password", "", flag="password", alias=A + "password", secret=True, group="vCenter",
                            help="vSphere password; typed, it is kept in the keyring or the machine's 0600 "
                                 "credentials file [env VSPHERE_PASSWORD, read at use and never stored]")
    insecure: bool = setting("Insecure", False, flag="insecure", env="VSPHERE_INSECURE", group="vCenter",
                             help="skip TLS verification of vCenter (a warning is shown)")
    ca_cert: str = setting("CACert", "", flag="ca-cert", env="VSPHERE_CA_CERT", group="vCenter",
                           help="PEM file of the CA that signed vCenter's certificate")
    # ---- placement
    datacenter: str = setting("Datacenter", "", flag="datacenter", env="VSPHERE_DATACENTER",
                              alias=A + "datacenter", group="Placement", help="datacenter (default: the only one)")
    cluster: str = setting("Cluster", "", flag="cluster", env="VSPHERE_CLUSTER", group="Placement",
                           help="cluster to run the VM in")
    hostsystem: str = setting("HostSystem", "", flag="hostsystem", env="VSPHERE_HOSTSYSTEM",
                              alias=A + "hostsystem", group="Placement",
                              help="host to run the VM on (docker-machine's CLUSTER/* and CLUSTER/HOST work)")
    pool: str = setting("Pool", "", flag="pool", env="VSPHERE_POOL", alias=A + "pool", group="Placement",
                        help="resource pool (default: the cluster's or host's root pool)")
    datastore: str = setting("Datastore", "", flag="datastore", env="VSPHERE_DATASTORE", alias=A + "datastore",
                             group="Placement", help="datastore (default: the template's)")
    datastore_cluster: str = setting("DatastoreCluster", "", flag="datastore-cluster",
                                     env="VSPHERE_DATASTORE_CLUSTER", alias=A + "datastore-cluster",
                                     group="Placement", help="datastore cluster: its member with most free space")
    folder: str = setting("Folder", "", flag="folder", env="VSPHERE_FOLDER", alias=A + "folder",
                          group="Placement", help="VM folder, relative to the datacenter's (must exist)")
    network: list = setting("Networks", [], flag="network", env="VSPHERE_NETWORK", alias=A + "network",
                            group="Placement", help="network for NIC 1, 2, … (repeatable; default: the template's)")
    # ---- what the VM is
    clone_from: str = setting("CloneFrom", "", flag="clone-from", env="VSPHERE_CLONE_FROM",
                              alias=A + "clone-from", group="VM",
                              help="template (or VM) to clone: a cloud image with cloud-init and VMware Tools")
    content_library: str = setting("ContentLibrary", "", flag="content-library", env="VSPHERE_CONTENT_LIBRARY",
                                   alias=A + "content-library", group="VM",
                                   help="content library holding --vsphere-clone-from as a VM template item")
    cpus: int = setting("CPU", 2, flag="cpu-count", env="VSPHERE_CPU_COUNT", alias=A + "cpu-count", min=1,
                        max=768, group="VM", help="virtual CPUs")
    memory: int = setting("Memory", 2048, flag="memory-size", env="VSPHERE_MEMORY_SIZE",
                          alias=A + "memory-size", min=128, max=24 * 1024 * 1024, group="VM", help="memory in MB")
    disk_size: int = setting("DiskSize", 20480, flag="disk-size", env="VSPHERE_DISK_SIZE", alias=A + "disk-size",
                             min=1024, max=62 * 1024 * 1024, group="VM",
                             help="disk in MB (the template's disk is grown to it, never shrunk)")
    cfgparam: list = setting("CfgParams", [], flag="cfgparam", env="VSPHERE_CFGPARAM", alias=A + "cfgparam",
                             group="VM", help="extraConfig KEY=VALUE for the VM (repeatable)")
    cloud_init: str = setting("CloudInit", "", flag="cloud-init", env="VSPHERE_CLOUDINIT",
                              alias=A + "cloudinit", group="VM",
                              help="your own cloud-init user-data file, sent alongside Machine's")
    cloud_init_via: str = setting("CloudInitVia", "guestinfo", flag="cloud-init-via", env="VSPHERE_CLOUD_INIT_VIA",
                                  choices=("guestinfo", "iso"), group="VM",
                                  help="guestinfo (extraConfig) or iso (a NoCloud seed on the datastore)")
    boot2docker_url: str = setting("Boot2DockerURL", "", flag="boot2docker-url", alias=A + "boot2docker-url",
                                   group="VM", help="not supported: boot2docker is gone; use --vsphere-clone-from")
    # ---- access and deadlines
    ssh_user: str = setting("SSHUser", "docker", flag="ssh-user", env="VSPHERE_SSH_USER", alias=A + "ssh-user",
                            group="Access", help="user cloud-init creates with the machine's key (sudo)")
    ssh_port: int = setting("SSHPort", 22, flag="ssh-port", env="VSPHERE_SSH_PORT", alias=A + "ssh-port", min=1,
                            max=65535, group="Access", help="SSH port")
    ip_timeout: int = setting("IPTimeout", 600, flag="ip-timeout", env="VSPHERE_IP_TIMEOUT", min=1, max=86400,
                              group="Access", help="seconds to wait for guest tools to report the address")
    task_timeout: int = setting("TaskTimeout", 1800, flag="task-timeout", env="VSPHERE_TASK_TIMEOUT", min=1,
                                max=86400, group="vCenter", help="seconds any one vSphere task may take")
    api_timeout: int = setting("APITimeout", 60, flag="api-timeout", env="VSPHERE_API_TIMEOUT", min=1, max=3600,
                               group="vCenter", help="seconds one API call may take")
    stop_timeout: int = setting("GracefulShutdownTimeout", 60, flag="stop-timeout", env="VSPHERE_STOP_TIMEOUT",
                                alias=A + "graceful-shutdown-timeout", min=0, max=3600, group="VM",
                                help="seconds a guest shutdown may take before the VM is powered off")
    # ---- state the driver keeps
    vm_ref: str = setting("VMRef", "")
    instance_uuid: str = setting("InstanceUUID", "")
    seed_iso: str = setting("SeedISO", "")

    def validate(self, driver_name: str) -> None:
        f = f"--{driver_name}-"
        if self.boot2docker_url:
            raise UsageError(f"{f}boot2docker-url is not supported (boot2docker is gone)",
                             f"clone a template with cloud-init and VMware Tools: {f}clone-from TEMPLATE")
        if not self.vcenter:
            raise UsageError("driver vsphere needs vCenter's address", f"pass {f}vcenter HOST (or VSPHERE_VCENTER)")
        if not self.clone_from:
            raise UsageError("driver vsphere needs a template to clone",
                             f"pass {f}clone-from TEMPLATE (a VM or template with cloud-init and VMware Tools)")
        if self.insecure and self.ca_cert:
            raise UsageError(f"{f}insecure and {f}ca-cert contradict each other", "give one of them")
        if self.datastore and self.datastore_cluster:
            raise UsageError(f"{f}datastore and {f}datastore-cluster both given", "give one of them")
        for item in self.cfgparam:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"invalid {f}cfgparam {item!r}", "write KEY=VALUE")
        user = self.ssh_user
        if not user or not user.replace("-", "").replace("_", "").isalnum() or user[0].isdigit():
            raise UsageError(f"invalid {f}ssh-user {user!r}", "use a plain login name")

    def extra_config(self) -> dict[str, str]:
        out = {}
        for item in self.cfgparam:
            key, _, value = item.partition("=")
            out[key.strip()] = value
        return out


class VSphereDriver(Driver):
    name = "vsphere"
    description = "VMs cloned from a template on VMware vCenter or ESXi"
    Config = VSphereConfig
    capabilities = Capabilities(private_network=True, cloud=True)
    config: VSphereConfig

    # ---- sessions ------------------------------------------------------------------------
    def _session(self):
        from . import session

        if self.config.insecure and not getattr(self, "_warned", False):
            self._warned = True
            self.ctx.report(f"warning: TLS verification of vCenter {self.config.vcenter} is off (--vsphere-insecure)")
        return session.session(self.config, self.ctx.report)

    def _wait(self, task, what: str):
        from . import session

        return session.wait_task(task, what, deadline_s=float(self.config.task_timeout), report=self.ctx.report)

    def _vm(self, si, *, required: bool = True):
        """The machine's VM (by moref, else by instance UUID); None when gone and not required."""
        from pyVmomi import vim, vmodl

        c = self.config
        if c.vm_ref:
            vm = vim.VirtualMachine(c.vm_ref, si._stub)
            try:
                _ = vm.name
                if not c.instance_uuid or vm.config.instanceUuid == c.instance_uuid:
                    return vm
            except vmodl.fault.ManagedObjectNotFound:
                pass
        if c.instance_uuid:
            vm = si.content.searchIndex.FindByUuid(None, c.instance_uuid, True, True)
            if vm is not None:
                return vm
        elif self._docker_machine_record():
            vm = self._by_name(si)
            if vm is not None:
                return vm
        if required:
            raise NotFound(f"the VM of machine {self.machine_name} no longer exists in vCenter",
                           f"remove the machine: machine rm -f {self.machine_name}")
        return None

    def _docker_machine_record(self) -> bool:
        """A machine docker-machine made: no template (it booted boot2docker) and none of our ids."""
        c = self.config
        return not c.clone_from and not c.instance_uuid and not c.vm_ref and bool(self.machine_name)

    def _by_name(self, si):
        """docker-machine found its VM by name in the datacenter (its records hold no id)."""
        from pyVmomi import vim

        from . import placement

        dc = placement.datacenter(si, self.config.datacenter)
        found = [v for v in placement._children(si, dc.vmFolder, vim.VirtualMachine) if v.name == self.machine_name]
        if len(found) > 1:
            raise MachineError(f"{len(found)} VMs are named {self.machine_name} in {dc.name}",
                               "remove the right one in vCenter, then: machine rm -f " + self.machine_name)
        return found[0] if found else None

    # ---- create ---------------------------------------------------------------------------
    def pre_create_check(self) -> None:
        """Log in, find every object the clone needs, check the datastore has room; create nothing."""
        from . import guest, placement, session

        guest.read_user_cloud_init(self.config.cloud_init)
        with self._session() as si:
            try:
                pl = placement.resolve(si, self.config)
                self._check_room(pl)
                if self.config.content_library:
                    from . import library

                    rest = library.Rest(self.config, session.ssl_context(self.config))
                    try:
                        library.find_item(rest, self.config.content_library, self.config.clone_from)
                    finally:
                        rest.logout()
            except (MachineError, UsageError):
                raise
            except Exception as e:
                raise session.translate(e, "checking vSphere") from None

    def _check_room(self, pl) -> None:
        ds = pl.datastore
        s = ds.summary
        if s.accessible is False:
            raise MachineError(f"datastore {ds.name} is not accessible", "pass another --vsphere-datastore")
        need = int(self.config.disk_size) * 1024 * 1024
        free = int(s.freeSpace or 0)
        if free < need:
            raise MachineError(f"datastore {ds.name} is full: {free / GiB:.1f} GiB free, "
                               f"{need / GiB:.1f} GiB needed for --vsphere-disk-size {self.config.disk_size}",
                               "free space on it, pass another --vsphere-datastore or a smaller disk")

    def create(self) -> None:
        from . import guest, placement, session, vm as _vm

        c = self.config
        c.ssh_key_path, public_key = guest.make_key(self.machine_dir, f"machine@{self.machine_name}")
        self.journal.record("ssh-key", c.ssh_key_path)
        extra_user = guest.read_user_cloud_init(c.cloud_init)
        with self._session() as si:
            try:
                pl = placement.resolve(si, c)
                self._check_room(pl)
                if c.content_library:
                    vm = self._deploy_from_library(si, pl)
                else:
                    c.instance_uuid = str(uuid.uuid4())
                    # journaled before the task starts: an interrupted clone is still found (by its UUID)
                    self.journal.record("vm", c.instance_uuid, name=self.machine_name)
                    self.ctx.report(f"cloning {pl.template.name} to {self.machine_name} on {pl.datastore.name}")
                    task = pl.template.CloneVM_Task(folder=pl.folder, name=self.machine_name,
                                                    spec=_vm.clone_spec(pl, c.instance_uuid))
                    vm = self._wait(task, f"cloning {pl.template.name}")
                    c.vm_ref = vm._moId
                    self.journal.forget("vm", c.instance_uuid)
                    self.journal.record("vm", c.instance_uuid, moref=c.vm_ref, name=self.machine_name)

                meta = guest.meta_data(f"{self.machine_name}-{secrets.token_hex(4)}", self.machine_name)
                user = guest.user_data(self.machine_name, public_key, c.ssh_user, extra_user)
                extra = {}
                if c.cloud_init_via == "guestinfo":
                    extra.update(guest.guestinfo(meta, user))
                extra.update(c.extra_config())
                spec = _vm.reconfig_spec(vm, cpus=c.cpus, memory_mb=c.memory, disk_mb=c.disk_size,
                                         networks=pl.networks, extra=extra, report=self.ctx.report)
                self.ctx.report(f"configuring {self.machine_name}: {c.cpus} CPU, {c.memory} MB, "
                                f"{c.disk_size} MB disk")
                self._wait(vm.ReconfigVM_Task(spec=spec), f"reconfiguring {self.machine_name}")
                if c.cloud_init_via == "iso":
                    path = f"{self.machine_name}/{_vm.SEED_NAME}"
                    iso = _vm.upload(si, c, session.ssl_context(c), pl.datacenter, pl.datastore, path,
                                     guest.seed_iso(meta, user), timeout=float(c.task_timeout))
                    c.seed_iso = iso
                    self.journal.record("datastore-file", iso, datacenter=pl.datacenter.name)
                    self._wait(vm.ReconfigVM_Task(spec=_vm.cdrom_spec(vm, iso)), "attaching the seed ISO")
                self._power_on(vm)
                c.ip_address = _vm.wait_ip(vm, float(c.ip_timeout), self.ctx.report)
            except (MachineError, UsageError):
                raise
            except Exception as e:
                raise session.translate(e, f"creating {self.machine_name}") from None

    def _deploy_from_library(self, si, pl):
        """Deploy --vsphere-clone-from out of --vsphere-content-library (vAPI REST), journaled at once."""
        from pyVmomi import vim

        from . import library, placement, session

        c = self.config
        if any(v.name == self.machine_name for v in placement._children(si, pl.folder, vim.VirtualMachine)):
            raise MachineError(f"a VM named {self.machine_name} already exists in folder {pl.folder.name}",
                               "pick another machine name or --vsphere-folder")
        rest = library.Rest(c, session.ssl_context(c))
        try:
            item = library.find_item(rest, c.content_library, c.clone_from)
            # the deploy call names no id we could journal first: the name in its folder stands in
            self.journal.record("vm-deploy", self.machine_name, folder=pl.folder._moId)
            self.ctx.report(f"deploying {c.clone_from} from content library {c.content_library} "
                            f"to {self.machine_name} on {pl.datastore.name}")
            ref = library.deploy(rest, item, self.machine_name, pl)
        finally:
            rest.logout()
        vm = vim.VirtualMachine(ref, si._stub)
        c.vm_ref, c.instance_uuid = ref, vm.config.instanceUuid
        self.journal.record("vm", c.instance_uuid, moref=ref, name=self.machine_name)
        self.journal.forget("vm-deploy", self.machine_name)
        if vm.config.template:
            # vCenter deploys a VM; govmomi's simulator (0.24) deploys a template: make it a VM
            vm.MarkAsVirtualMachine(pool=pl.pool, host=pl.host)
        return vm

    def _power_on(self, vm) -> None:
        from pyVmomi import vim

        if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOn:
            name = vm.name
            self.ctx.report(f"powering on {name}")
            self._wait(vm.PowerOnVM_Task(), f"powering on {name}")

    def _power_off(self, vm) -> None:
        from pyVmomi import vim

        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOff:
            return
        name = vm.name
        try:
            self._wait(vm.PowerOffVM_Task(), f"powering off {name}")
        except MachineError:
            if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff:
                raise

    # ---- remove -------------------------------------------------------------------------------
    def remove(self) -> None:
        """Destroy every journaled VM and datastore file; what is gone already is skipped."""
        from pyVmomi import vim, vmodl

        from . import session

        entries = list(self.journal)
        if not entries and self._docker_machine_record():
            with self._session() as si:
                vm = self._by_name(si)
                if vm is not None:
                    self.ctx.report(f"destroying VM {vm.name} (made by docker-machine)")
                    self._power_off(vm)
                    self._wait(vm.Destroy_Task(), f"destroying {self.machine_name}")
            return
        if not any(e["kind"] in ("vm", "vm-deploy", "datastore-file") for e in entries) and not self.config.vm_ref:
            for e in entries:
                self.journal.forget(e["kind"], e["id"])
            return
        with self._session() as si:
            try:
                for e in reversed(entries):
                    if e["kind"] == "vm":
                        vm = None
                        if e.get("moref"):
                            cand = vim.VirtualMachine(e["moref"], si._stub)
                            try:
                                if cand.config.instanceUuid == e["id"]:
                                    vm = cand
                            except vmodl.fault.ManagedObjectNotFound:
                                pass
                        if vm is None:
                            vm = si.content.searchIndex.FindByUuid(None, e["id"], True, True)
                        if vm is not None:
                            name = vm.name
                            self.ctx.report(f"destroying VM {name}")
                            self._power_off(vm)
                            try:
                                self._wait(vm.Destroy_Task(), f"destroying {name}")
                            except MachineError:
                                if si.content.searchIndex.FindByUuid(None, e["id"], True, True) is not None:
                                    raise
                    elif e["kind"] == "datastore-file":
                        self._delete_file(si, e)
                    elif e["kind"] == "vm-deploy":
                        folder = vim.Folder(e["folder"], si._stub)
                        from . import placement

                        try:
                            mine = [v for v in placement._children(si, folder, vim.VirtualMachine)
                                    if v.name == e["id"]]
                        except vmodl.fault.ManagedObjectNotFound:
                            mine = []
                        for vm in mine:
                            self._power_off(vm)
                            self._wait(vm.Destroy_Task(), f"destroying {e['id']}")
                    self.journal.forget(e["kind"], e["id"])
            except (MachineError, UsageError):
                raise
            except Exception as ex:
                raise session.translate(ex, f"removing {self.machine_name}") from None
        self.config.vm_ref = ""

    def _delete_file(self, si, entry) -> None:
        from pyVmomi import vim

        from . import placement

        dc = placement.find_one(si, si.content.rootFolder, vim.Datacenter, entry.get("datacenter", ""),
                                "--vsphere-datacenter", "datacenter") if entry.get("datacenter") else None
        try:
            self._wait(si.content.fileManager.DeleteDatastoreFile_Task(name=entry["id"], datacenter=dc),
                       f"deleting {entry['id']}")
        except MachineError as e:
            if "FileNotFound" not in e.message and "not found" not in e.message.lower():
                raise

    # ---- lifecycle ------------------------------------------------------------------------------
    def state(self) -> State:
        from pyVmomi import vim

        with self._session() as si:
            vm = self._vm(si)
            s = vm.runtime.powerState
        if s == vim.VirtualMachinePowerState.poweredOn:
            return State.RUNNING
        if s == vim.VirtualMachinePowerState.suspended:
            return State.PAUSED
        return State.STOPPED

    def start(self) -> None:
        from . import vm as _vm

        with self._session() as si:
            vm = self._vm(si)
            self._power_on(vm)
            self.config.ip_address = _vm.wait_ip(vm, float(self.config.ip_timeout), self.ctx.report)

    def stop(self) -> None:
        """Guest shutdown through VMware Tools, then power off after --vsphere-stop-timeout."""
        import time

        from pyVmomi import vim

        with self._session() as si:
            vm = self._vm(si)
            if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOff:
                return
            if vm.guest and vm.guest.toolsRunningStatus == "guestToolsRunning":
                try:
                    vm.ShutdownGuest()
                    end = time.monotonic() + self.config.stop_timeout
                    while time.monotonic() < end:
                        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOff:
                            return
                        time.sleep(1)
                    self.ctx.report(f"{vm.name} did not shut down in {self.config.stop_timeout}s; powering off")
                except (vim.fault.InvalidPowerState, vim.fault.ToolsUnavailable):
                    pass
            self._power_off(vm)

    def kill(self) -> None:
        with self._session() as si:
            self._power_off(self._vm(si))

    def private_address(self) -> str | None:
        return self.config.ip_address or None
