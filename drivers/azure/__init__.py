"""Driver `azure`: a Linux VM on Azure Resource Manager, through azure-identity and azure-mgmt-*.

create: resource group (if missing) → availability set (if asked and missing) → network
security group with SSH, engine and swarm rules → virtual network and subnet (if missing)
→ public IP (unless --azure-no-public-ip) → NIC → VM with a managed OS disk. Every
resource's ARM ID is known before it is asked for, so each is journaled *before* the call
that creates it: an interrupted or failed create leaves nothing `rm` cannot find. `rm`
deletes in dependency order (VM, disk, NIC, IP, NSG, then the shared ones — availability
set, subnet, network, group — only when nothing else uses them); missing is not an error.

The SDKs are imported inside methods only (client.py): `machine ls`/`env` never load them.
"""
from __future__ import annotations

import base64
import logging
import os
import time

from ...driver import Capabilities, Driver, remove_journaled
from ...errors import MachineError, NotFound
from ...model import State
from . import keys, resources as R
from .errors import AuthFailed, AzureError, QuotaExceeded, convert, error_code, is_not_found, translate
from .options import AzureConfig, parse_image

log = logging.getLogger("machine.drivers.azure")

POWER_STATE = {
    "running": State.RUNNING, "starting": State.STARTING, "stopping": State.STOPPING,
    "stopped": State.STOPPED, "deallocating": State.STOPPING, "deallocated": State.STOPPED,
}
#: tag on every resource Machine creates (the machine that made it): shared ones carrying it may be cleaned up
TAG = "machine-name"
SWARM_PORTS = ((2377, "Tcp"), (7946, "Tcp"), (7946, "Udp"), (4789, "Udp"))


class AzureDriver(Driver):
    name = "azure"
    description = "a Linux VM on Microsoft Azure (azure-identity credentials; azure-mgmt-compute/-network)"
    Config = AzureConfig
    capabilities = Capabilities(cloud=True, private_network=True)
    config: AzureConfig

    #: seconds between progress checks of a long-running operation (tests shorten it)
    poll_step: float = 2.0
    #: seconds between progress lines while waiting
    report_every: float = 15.0

    def __init__(self, config: AzureConfig, ctx):
        super().__init__(config, ctx)
        self._az = None
        self._checked: dict | None = None

    # ---- clients -----------------------------------------------------------------------
    @property
    def az(self):
        if self._az is None:
            from .client import Clients

            self._az = Clients(self.config)
        return self._az

    @property
    def _names(self) -> dict[str, str]:
        return R.names(self.machine_name)

    def _rid(self, kind: str, name: str | None = None, rg: str | None = None) -> str:
        return R.rid(self.config.subscription_id, rg or self.config.resource_group, kind,
                     name or self._names[kind])

    def _wait(self, poller, what: str):
        """Wait for a long-running operation with the --azure-timeout deadline, reporting progress."""
        timeout = float(self.config.timeout)
        t0 = time.monotonic()
        last = t0
        with translate(what):
            while not poller.done():
                now = time.monotonic()
                if now - t0 >= timeout:
                    raise AzureError(f"{what} did not finish within {timeout:.0f}s (status {poller.status()})",
                                     "raise --azure-timeout, or look at the resource in the Azure portal")
                poller.wait(min(self.poll_step, timeout - (now - t0)))
                if time.monotonic() - last >= self.report_every:
                    last = time.monotonic()
                    self.ctx.report(f"{what}: {poller.status()} ({last - t0:.0f}s)")
            return poller.result()

    # ---- pre-create check: reads only ----------------------------------------------------
    def pre_create_check(self) -> None:
        c = self.config
        az = self.az
        az.check_token()
        checked: dict = {}
        with translate(f"look up resource group {c.resource_group}"):
            try:
                az.resource.resource_groups.get(c.resource_group)
                checked["group_exists"] = True
            except Exception as e:
                if error_code(e) != "ResourceGroupNotFound":
                    raise
                checked["group_exists"] = False
        with translate(f"list the VM sizes of {c.location}"):
            sizes = {s.name.lower(): s for s in az.compute.virtual_machine_sizes.list(c.location)}
        size = sizes.get(c.size.lower())
        if size is None:
            import difflib

            near = difflib.get_close_matches(c.size, [s.name for s in sizes.values()], n=5, cutoff=0.5)
            raise NotFound(f"VM size {c.size} is not offered in {c.location}",
                             "choose another --azure-size" + (f", e.g. {', '.join(near[:5])}" if near else ""))
        self._check_image()
        self._check_quota(size.number_of_cores)
        if checked["group_exists"]:
            with translate(f"look for an existing VM {self.machine_name}"):
                try:
                    az.compute.virtual_machines.get(c.resource_group, self.machine_name)
                    exists = True
                except Exception as e:
                    if not is_not_found(e):
                        raise
                    exists = False
            if exists:
                raise AzureError(f"a VM named {self.machine_name} already exists in resource group "
                                 f"{c.resource_group}", "pick another machine name or --azure-resource-group")
        self._checked = checked

    def _check_image(self) -> None:
        c, compute = self.config, self.az.compute
        ref = parse_image(c.image)
        hint = "check --azure-image (az vm image list --all -p PUBLISHER)"
        try:
            if "id" in ref:
                p = ref["id"].strip("/").split("/")
                low = [x.lower() for x in p]
                rg = p[3]
                if "galleries" in low:
                    gi = low.index("galleries")
                    g, img = p[gi + 1], p[gi + 3] if len(p) > gi + 3 else ""
                    if len(p) > gi + 5:
                        compute.gallery_image_versions.get(rg, g, img, p[gi + 5])
                    else:
                        compute.gallery_images.get(rg, g, img)
                else:
                    compute.images.get(rg, p[-1])
            elif ref["version"].lower() == "latest":
                found = compute.virtual_machine_images.list(c.location, ref["publisher"], ref["offer"], ref["sku"])
                if not found:
                    raise NotFound(f"image {c.image} is not available in {c.location}", hint)
            else:
                compute.virtual_machine_images.get(c.location, ref["publisher"], ref["offer"], ref["sku"],
                                                   ref["version"])
        except MachineError:
            raise
        except Exception as e:
            if is_not_found(e):
                raise NotFound(f"image {c.image} is not available in {c.location}", hint) from None
            raise convert(e, "look up the image") from e

    def _check_quota(self, cores: int) -> None:
        c = self.config
        with translate(f"read the compute quotas of {c.location}"):
            usages = {u.name.value: u for u in self.az.compute.usage.list(c.location)}
        for key, need, what in (("cores", cores, "vCPUs"), ("virtualMachines", 1, "VMs")):
            u = usages.get(key)
            if u is not None and u.current_value + need > u.limit:
                raise QuotaExceeded(f"quota exceeded: {c.size} needs {need} {what} in {c.location}, "
                                    f"{u.current_value} of {u.limit} are in use",
                                    "free some, choose a smaller --azure-size or another --azure-location, "
                                    "or request a quota increase")
        if not c.no_public_ip:
            with translate(f"read the network quotas of {c.location}"):
                nets = {u.name.value: u for u in self.az.network.usages.list(c.location)}
            u = nets.get("PublicIPAddresses")
            if u is not None and u.current_value + 1 > u.limit:
                raise QuotaExceeded(f"quota exceeded: {u.current_value} of {u.limit} public IP addresses are in use "
                                    f"in {c.location}", "free one, pass --azure-no-public-ip, or request more")

    # ---- create ----------------------------------------------------------------------------
    def create(self) -> None:
        if self._checked is None:
            self.pre_create_check()
        c, az, n = self.config, self.az, self._names
        from azure.mgmt.compute import models as cm
        from azure.mgmt.network import models as nm

        tags = dict(c.tags or {})
        tags.setdefault(TAG, self.machine_name)
        c.ssh_key_path, public_key = keys.generate(self.machine_dir, comment=f"machine-{self.machine_name}")
        loc, rg = c.location, c.resource_group
        vnet_rg, vnet_name = c.vnet_group_and_name()

        # 1. shared resources (group, availability set, network, subnet), under a lock so that
        #    parallel creates and removes in this store agree on who made them.
        with self.ctx.lock(f"azure-{c.subscription_id}-{rg}"):
            self._ensure_group(rg, tags)
            if vnet_rg.lower() != rg.lower():
                self._ensure_group(vnet_rg, tags)
            aset_id = None
            if c.availability_set:
                aset_id = self._ensure_availability_set(cm, tags)
            subnet = self._ensure_subnet(nm, vnet_rg, vnet_name, tags)

            # 2. the machine's own resources
            nsg = self._create("nsg", "create the network security group",
                               lambda: az.network.network_security_groups.begin_create_or_update(
                                   rg, n["nsg"], nm.NetworkSecurityGroup(
                                       location=loc, tags=tags, security_rules=self._rules(nm))))
            pip = None
            if not c.no_public_ip:
                pip = self._create("public_ip", "create the public IP address",
                                   lambda: az.network.public_ip_addresses.begin_create_or_update(
                                       rg, n["public_ip"], nm.PublicIPAddress(
                                           location=loc, tags=tags,
                                           sku=nm.PublicIPAddressSku(name="Standard" if c.zone else "Basic"),
                                           zones=[c.zone] if c.zone else None,
                                           public_ip_allocation_method="Static" if (c.static_public_ip or c.zone)
                                           else "Dynamic",
                                           dns_settings=nm.PublicIPAddressDnsSettings(domain_name_label=c.dns_label)
                                           if c.dns_label else None)))
            ipcfg = nm.NetworkInterfaceIPConfiguration(
                name="ipconfig1", subnet=nm.Subnet(id=subnet.id),
                public_ip_address=nm.PublicIPAddress(id=pip.id) if pip else None,
                private_ip_allocation_method="Static" if c.private_ip_address else "Dynamic",
                private_ip_address=c.private_ip_address or None)
            self._create("nic", "create the network interface",
                         lambda: az.network.network_interfaces.begin_create_or_update(
                             rg, n["nic"], nm.NetworkInterface(
                                 location=loc, tags=tags, ip_configurations=[ipcfg],
                                 network_security_group=nm.NetworkSecurityGroup(id=nsg.id))))

        # 3. the VM (its OS disk is journaled with it: both names are ours)
        ref = parse_image(c.image)
        image = cm.ImageReference(id=ref["id"]) if "id" in ref else cm.ImageReference(
            publisher=ref["publisher"], offer=ref["offer"], sku=ref["sku"], version=ref["version"])
        custom_data = None
        if c.custom_data_file:
            with open(os.path.expanduser(c.custom_data_file), "rb") as f:
                custom_data = base64.b64encode(f.read()).decode()
        vm = cm.VirtualMachine(
            location=loc, tags=tags, zones=[c.zone] if c.zone else None,
            hardware_profile=cm.HardwareProfile(vm_size=c.size),
            storage_profile=cm.StorageProfile(
                image_reference=image,
                os_disk=cm.OSDisk(name=n["disk"], create_option="FromImage", disk_size_gb=int(c.disk_size),
                                  delete_option="Delete",
                                  managed_disk=cm.ManagedDiskParameters(storage_account_type=c.storage_type))),
            os_profile=cm.OSProfile(
                computer_name=self.machine_name[:64], admin_username=c.ssh_user, custom_data=custom_data,
                linux_configuration=cm.LinuxConfiguration(
                    disable_password_authentication=True,
                    ssh=cm.SshConfiguration(public_keys=[cm.SshPublicKey(
                        path=f"/home/{c.ssh_user}/.ssh/authorized_keys", key_data=public_key)]))),
            network_profile=cm.NetworkProfile(network_interfaces=[
                cm.NetworkInterfaceReference(id=self._rid("nic"), primary=True)]),
            availability_set=cm.SubResource(id=aset_id) if aset_id else None,
            priority="Spot" if c.spot else None,
            eviction_policy="Deallocate" if c.spot else None,
            billing_profile=cm.BillingProfile(max_price=float(c.max_price)) if c.spot else None)
        self.journal.record("disk", self._rid("disk"), name=n["disk"])
        created = self._create("vm", f"create the VM {self.machine_name} ({c.size})",
                               lambda: az.compute.virtual_machines.begin_create_or_update(rg, n["vm"], vm))
        c.vm_id = getattr(created, "vm_id", "") or ""
        self._refresh_addresses()
        if not c.ip_address:
            raise AzureError(f"VM {self.machine_name} has no {'private' if c.use_private_ip else 'public'} address",
                             "check the network settings")
        log.info("VM %s is up at %s", self.machine_name, c.ip_address)

    def _create(self, kind: str, what: str, begin, **attrs):
        """Journal the resource (its ID is known from its name), then create it and wait."""
        rid = self._rid(kind)
        self.journal.record(kind, rid, name=R.parse(rid)["name"], **attrs)
        with translate(what):
            poller = begin()
        return self._wait(poller, what)

    def _ensure_group(self, rg: str, tags: dict) -> None:
        c, az = self.config, self.az
        gid = R.group_id(c.subscription_id, rg)
        with translate(f"look up resource group {rg}"):
            try:
                group = az.resource.resource_groups.get(rg)
            except Exception as e:
                if error_code(e) != "ResourceGroupNotFound" and not is_not_found(e):
                    raise
                group = None
        if group is not None:
            self._adopt("resource_group", gid, rg, group.tags)
            return
        self.journal.record("resource_group", gid, name=rg, shared=True)
        with translate(f"create resource group {rg}"):
            az.resource.resource_groups.create_or_update(rg, {"location": c.location, "tags": tags})

    def _adopt(self, kind: str, rid: str, name: str, tags) -> None:
        """A shared resource another machine made (it carries our tag) is this machine's to clean
        up too, when it is the last user; a resource the user made is never touched."""
        if (tags or {}).get(TAG) and not any(e["id"] == rid for e in self.journal.entries):
            self.journal.record(kind, rid, name=name, shared=True, adopted=True)

    def _ensure_availability_set(self, cm, tags: dict) -> str:
        c, az = self.config, self.az
        rid = self._rid("availability_set", c.availability_set)
        with translate(f"look up availability set {c.availability_set}"):
            try:
                aset = az.compute.availability_sets.get(c.resource_group, c.availability_set)
                self._adopt("availability_set", rid, c.availability_set, aset.tags)
                return aset.id
            except Exception as e:
                if not is_not_found(e):
                    raise
        self.journal.record("availability_set", rid, name=c.availability_set, shared=True)
        with translate(f"create availability set {c.availability_set}"):
            return az.compute.availability_sets.create_or_update(
                c.resource_group, c.availability_set, cm.AvailabilitySet(
                    location=c.location, tags=tags, sku=cm.Sku(name="Aligned"),
                    platform_fault_domain_count=int(c.fault_domain_count),
                    platform_update_domain_count=int(c.update_domain_count))).id

    def _ensure_subnet(self, nm, vnet_rg: str, vnet_name: str, tags: dict):
        c, az = self.config, self.az
        vnet_id = R.rid(c.subscription_id, vnet_rg, "vnet", vnet_name)
        with translate(f"look up virtual network {vnet_name}"):
            try:
                vnet = az.network.virtual_networks.get(vnet_rg, vnet_name)
            except Exception as e:
                if not is_not_found(e):
                    raise
                vnet = None
        if vnet is None:
            self.journal.record("vnet", vnet_id, name=vnet_name, shared=True)
            with translate(f"create virtual network {vnet_name}"):
                poller = az.network.virtual_networks.begin_create_or_update(
                    vnet_rg, vnet_name, nm.VirtualNetwork(
                        location=c.location, tags=tags,
                        address_space=nm.AddressSpace(address_prefixes=[c.subnet_prefix])))
            self._wait(poller, f"create virtual network {vnet_name}")
        else:
            self._adopt("vnet", vnet_id, vnet_name, vnet.tags)
            sid = R.subnet_id(c.subscription_id, vnet_rg, vnet_name, c.subnet)
            with translate(f"look up subnet {c.subnet}"):
                try:
                    subnet = az.network.subnets.get(vnet_rg, vnet_name, c.subnet)
                    self._adopt("subnet", sid, c.subnet, vnet.tags)
                    return subnet
                except Exception as e:
                    if not is_not_found(e):
                        raise
        self.journal.record("subnet", R.subnet_id(c.subscription_id, vnet_rg, vnet_name, c.subnet),
                            name=c.subnet, shared=True)
        with translate(f"create subnet {c.subnet}"):
            poller = az.network.subnets.begin_create_or_update(
                vnet_rg, vnet_name, c.subnet, nm.Subnet(address_prefix=c.subnet_prefix))
        return self._wait(poller, f"create subnet {c.subnet}")

    def _rules(self, nm) -> list:
        c = self.config
        rules = []
        prio = 300

        def add(name, port, proto="Tcp", source="*"):
            nonlocal prio
            rules.append(nm.SecurityRule(
                name=name, protocol=proto, access="Allow", direction="Inbound", priority=prio,
                source_address_prefix=source, source_port_range="*", destination_address_prefix="*",
                destination_port_range=str(port)))
            prio += 10

        add("SSHAllowAny", int(c.ssh_port or 22))
        add("DockerAllowAny", int(c.docker_port))
        for port, proto in SWARM_PORTS:  # swarm: only from inside the virtual network
            add(f"Swarm{port}{proto}", port, proto, source="VirtualNetwork")
        for item in c.open_ports:
            num, _, proto = str(item).partition("/")
            proto = (proto or "tcp").capitalize()
            add(f"Port{num}{proto}AllowAny", int(num), proto)
        return rules

    def _refresh_addresses(self) -> None:
        """Read the NIC's private and the public IP's address into the config."""
        c, az = self.config, self.az
        with translate("read the network interface"):
            nic = az.network.network_interfaces.get(c.resource_group, self._names["nic"])
        cfg = nic.ip_configurations[0]
        c.private_address = cfg.private_ip_address or ""
        public = ""
        if cfg.public_ip_address is not None and not c.no_public_ip:
            with translate("read the public IP address"):
                pip = az.network.public_ip_addresses.get(c.resource_group, R.parse(cfg.public_ip_address.id)["name"])
            public = pip.ip_address or ""
        c.ip_address = c.private_address if c.use_private_ip else public

    # ---- remove ----------------------------------------------------------------------------
    def remove(self) -> None:
        entries = list(self.journal)
        if not entries and not self.config.subscription_id:
            return
        if not entries:
            entries = self._legacy_entries()
        c = self.config

        def delete(entry: dict) -> None:
            if entry["kind"] in R.SHARED:
                # "is anything else using it?" and the delete must not interleave with a create
                with self.ctx.lock(f"azure-{c.subscription_id}-{c.resource_group}"):
                    self._delete(entry)
            else:
                self._delete(entry)

        remove_journaled(entries, order=R.REMOVE_ORDER, remove_entry=delete, translate=convert,
                         error_class=AzureError, fatal=(AuthFailed,), describe=lambda e: R.parse(e["id"])["name"],
                         log=log)

    def _legacy_entries(self) -> list[dict]:
        """A docker-machine record has no journal: its resources by docker-machine's names."""
        out = [{"kind": k, "id": self._rid(k)} for k in ("vm", "nic", "public_ip", "nsg")]
        vnet_rg, vnet = self.config.vnet_group_and_name()
        sub = self.config.subscription_id
        out.append({"kind": "subnet", "id": R.subnet_id(sub, vnet_rg, vnet, self.config.subnet), "shared": True})
        out.append({"kind": "vnet", "id": R.rid(sub, vnet_rg, "vnet", vnet), "shared": True})
        if self.config.availability_set:
            out.append({"kind": "availability_set", "id": self._rid("availability_set", self.config.availability_set),
                        "shared": True})
        return out

    def _delete(self, entry: dict) -> None:
        kind, rid = entry["kind"], entry["id"]
        p = R.parse(rid)
        az, rg, name = self.az, p["rg"], p["name"]
        what = f"delete {kind.replace('_', ' ')} {name}"
        try:
            if kind == "vm":
                self._wait(az.compute.virtual_machines.begin_delete(rg, name), what)
            elif kind == "disk":
                self._wait(az.compute.disks.begin_delete(rg, name), what)
            elif kind == "nic":
                self._wait(az.network.network_interfaces.begin_delete(rg, name), what)
            elif kind == "public_ip":
                self._wait(az.network.public_ip_addresses.begin_delete(rg, name), what)
            elif kind == "nsg":
                self._wait(az.network.network_security_groups.begin_delete(rg, name), what)
            elif kind == "availability_set":
                aset = az.compute.availability_sets.get(rg, name)
                if aset.virtual_machines:
                    log.info("availability set %s still holds VMs: left for them", name)
                else:
                    az.compute.availability_sets.delete(rg, name)
            elif kind == "subnet":
                subnet = az.network.subnets.get(rg, p["parent"], name)
                if subnet.ip_configurations:
                    log.info("subnet %s is still in use: left for its other machines", name)
                else:
                    self._wait(az.network.subnets.begin_delete(rg, p["parent"], name), what)
            elif kind == "vnet":
                vnet = az.network.virtual_networks.get(rg, name)
                if vnet.subnets:
                    log.info("virtual network %s still has subnets: left for them", name)
                else:
                    self._wait(az.network.virtual_networks.begin_delete(rg, name), what)
            elif kind == "resource_group":
                left = list(az.resource.resources.list_by_resource_group(name))
                if left:
                    log.info("resource group %s still holds %d resource(s): left for them", name, len(left))
                else:
                    self._wait(az.resource.resource_groups.begin_delete(name), what)
            else:
                log.warning("unknown journal entry %s %s: left alone", kind, rid)
        except MachineError as e:
            if not _gone(e.__cause__):
                raise
        except Exception as e:
            if not _gone(e):
                raise
        if any(x["kind"] == kind and x["id"] == rid for x in self.journal.entries):
            self.journal.forget(kind, rid)

    # ---- power ---------------------------------------------------------------------------------
    def _vm_action(self, action: str, what: str, **kw) -> None:
        c = self.config
        with translate(what):
            poller = getattr(self.az.compute.virtual_machines, f"begin_{action}")(
                c.resource_group, self.machine_name, **kw)
        self._wait(poller, what)

    def start(self) -> None:
        if self.state() == State.RUNNING:
            return
        self._vm_action("start", f"start VM {self.machine_name}")
        self._refresh_addresses()   # a dynamic public address changes across deallocation

    def stop(self) -> None:
        """Shut down and deallocate: a stopped VM is not billed for compute."""
        self._vm_action("deallocate", f"stop (deallocate) VM {self.machine_name}")

    def kill(self) -> None:
        """Power off at once, without a guest shutdown (the VM stays allocated)."""
        self._vm_action("power_off", f"power off VM {self.machine_name}", skip_shutdown=True)

    def restart(self) -> None:
        if self.state() != State.RUNNING:
            self.start()
            return
        self._vm_action("restart", f"restart VM {self.machine_name}")

    def state(self) -> State:
        from .status import instance_view_statuses

        return state_of(instance_view_statuses(self.config, self.machine_name))

    @classmethod
    def batch_states(cls, drivers: list["AzureDriver"]) -> dict[str, State] | None:
        """One list call per subscription and endpoint (`ls`), without the management SDKs."""
        from .status import list_statuses

        out: dict[str, State] = {}
        groups: dict[tuple, list] = {}
        for d in drivers:
            c = d.config
            groups.setdefault((c.subscription_id, c.arm_endpoint(), c.client_id, c.tenant_id), []).append(d)
        for members in groups.values():
            try:
                statuses = list_statuses(members[0].config)
            except MachineError:
                continue   # each machine is then asked on its own, and shows its own error
            for d in members:
                found = statuses.get(d._rid("vm").lower())
                if found is not None:
                    out[d.machine_name] = state_of(found)
        return out

    # ---- addresses -------------------------------------------------------------------------------
    def default_engine_port(self) -> int | None:
        return int(self.config.docker_port)

    def addresses(self) -> list[str]:
        out = []
        for ip in (self.config.ip_address, self.config.private_address):
            if ip and ip not in out:
                out.append(ip)
        return out

    def private_address(self) -> str | None:
        return self.config.private_address or None


def state_of(statuses) -> State:
    """An instance view's statuses -> State (provisioning failure wins, then the power state)."""
    codes = [(getattr(s, "code", None) or (s.get("code") if isinstance(s, dict) else "") or "") for s in statuses]
    if any(code.lower() == "provisioningstate/failed" for code in codes):
        return State.ERROR
    for code in codes:
        if code.lower().startswith("powerstate/"):
            return POWER_STATE.get(code.split("/", 1)[1].lower(), State.NONE)
    if any(code.lower().startswith("provisioningstate/") for code in codes):
        return State.STARTING
    return State.NONE


def _gone(exc) -> bool:
    """A delete found nothing to delete (the resource, or its whole group, is gone)."""
    return exc is not None and (is_not_found(exc) or error_code(exc) in ("ResourceGroupNotFound", "ResourceNotFound"))


__all__ = ["AzureDriver", "AzureConfig", "state_of"]
