"""Driver `google`: a Compute Engine instance through google-auth and google-cloud-compute.

create: a firewall rule for the machine (SSH, engine, swarm inside the network, open
ports; targeted at the machine's own network tag) → the instance with its boot disk.
Both names are ours, so each is journaled *before* the call that creates it; `rm`
deletes the instance, its boot disk (if auto-delete did not) and the rule, and treats
"not found" as done. Operations are waited with --google-timeout as the deadline and
reported as progress.

The SDK is imported inside methods only (client.py): `machine ls`/`env` never load it.
"""
from __future__ import annotations

import logging
import os
import time

from ...driver import Capabilities, Driver, remove_journaled
from ...errors import MachineError, NotFound
from ...model import State
from . import keys
from .errors import AuthFailed, GoogleError, QuotaExceeded, convert, is_not_found, translate
from .options import GoogleConfig, image_path, parse_accelerator

log = logging.getLogger("machine.drivers.google")

STATUS_STATE = {
    "PROVISIONING": State.STARTING, "STAGING": State.STARTING, "RUNNING": State.RUNNING,
    "STOPPING": State.STOPPING, "SUSPENDING": State.STOPPING, "STOPPED": State.STOPPED,
    "SUSPENDED": State.STOPPED, "TERMINATED": State.STOPPED, "REPAIRING": State.ERROR,
}
REMOVE_ORDER = ("instance", "disk", "firewall")
SWARM_PORTS = (("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789"))


class GoogleDriver(Driver):
    name = "google"
    description = "a Compute Engine instance on Google Cloud (application default credentials)"
    Config = GoogleConfig
    capabilities = Capabilities(cloud=True, private_network=True)
    config: GoogleConfig

    poll_step: float = 5.0
    report_every: float = 15.0

    def __init__(self, config: GoogleConfig, ctx):
        super().__init__(config, ctx)
        self._gc = None
        self._checked: dict | None = None

    @property
    def gc(self):
        if self._gc is None:
            from .client import Clients

            self._gc = Clients(self.config)
        return self._gc

    @property
    def _firewall_name(self) -> str:
        return f"machine-{self.machine_name}"[:63].rstrip("-")

    # ---- operations -------------------------------------------------------------------------
    def _wait(self, op, what: str, *, zone: bool = True):
        """Wait for a zone or global operation with the --google-timeout deadline; raise its error."""
        c = self.config
        timeout = float(c.timeout)
        t0 = last = time.monotonic()
        name = op.name
        with translate(what):
            while str(getattr(op.status, "name", op.status)) != "DONE":
                elapsed = time.monotonic() - t0
                if elapsed >= timeout:
                    raise GoogleError(f"{what} did not finish within {timeout:.0f}s",
                                      "raise --google-timeout, or look at the operation in the console")
                # the server's wait returns when the operation is done or after about two minutes
                left = max(1.0, min(150.0, timeout - elapsed))
                try:
                    if zone:
                        op = self.gc.zone_operations.wait(project=c.project, zone=c.zone, operation=name,
                                                          timeout=left)
                    else:
                        op = self.gc.global_operations.wait(project=c.project, operation=name, timeout=left)
                except Exception as e:
                    if type(e).__name__ not in ("ReadTimeout", "Timeout", "DeadlineExceeded", "ConnectTimeout"):
                        raise
                if time.monotonic() - last >= self.report_every:
                    last = time.monotonic()
                    self.ctx.report(f"{what}: {getattr(op.status, 'name', op.status)} ({last - t0:.0f}s)")
        errors = list(op.error.errors) if op.error and op.error.errors else []
        if errors:
            e = errors[0]
            msg = f"cannot {what}: {e.code}: {e.message}"
            if "QUOTA" in (e.code or "").upper():
                raise QuotaExceeded(msg, "free capacity, choose another zone, or request more quota", e.code)
            raise GoogleError(msg, None, e.code, int(op.http_error_status_code or 0))
        return op

    # ---- pre-create check --------------------------------------------------------------------
    def pre_create_check(self) -> None:
        c, gc = self.config, self.gc
        gc.creds  # noqa: B018 - ADC found (or one clear error), project settled
        checked: dict = {}
        with translate(f"look up zone {c.zone} in project {c.project}"):
            gc.zones.get(project=c.project, zone=c.zone)
        with translate(f"look up machine type {c.machine_type}"):
            try:
                mt = gc.machine_types.get(project=c.project, zone=c.zone, machine_type=c.machine_type)
            except Exception as e:
                if is_not_found(e):
                    raise NotFound(f"machine type {c.machine_type} is not offered in {c.zone}",
                                     "choose another --google-machine-type (gcloud compute machine-types list)") from None
                raise
        checked["cpus"] = int(mt.guest_cpus)
        checked["image"] = self._resolve_image()
        with translate(f"look up disk type {c.disk_type}"):
            try:
                gc.disk_types.get(project=c.project, zone=c.zone, disk_type=c.disk_type)
            except Exception as e:
                if is_not_found(e):
                    raise NotFound(f"disk type {c.disk_type} does not exist in {c.zone}",
                                     "choose another --google-disk-type") from None
                raise
        gpus = None
        if c.accelerator:
            kind, count = parse_accelerator(c.accelerator)
            with translate(f"look up accelerator {kind}"):
                try:
                    acc = gc.accelerator_types.get(project=c.project, zone=c.zone, accelerator_type=kind)
                except Exception as e:
                    if is_not_found(e):
                        raise NotFound(f"accelerator {kind} is not offered in {c.zone}",
                                         "choose another type or zone (gcloud compute accelerator-types list)") from None
                    raise
            if acc.maximum_cards_per_instance and count > acc.maximum_cards_per_instance:
                raise GoogleError(f"{kind} allows at most {acc.maximum_cards_per_instance} per instance",
                                 "lower the count in --google-accelerator")
            gpus = (kind, count)
        with translate(f"look up network {c.network}"):
            try:
                gc.networks.get(project=c.project, network=c.network)
                if c.subnetwork:
                    gc.subnetworks.get(project=c.project, region=c.region, subnetwork=c.subnetwork)
            except Exception as e:
                if is_not_found(e):
                    raise NotFound(f"network {c.network}{'/' + c.subnetwork if c.subnetwork else ''} does not exist",
                                     "check --google-network and --google-subnetwork") from None
                raise
        if c.address:
            self._resolve_address()
        self._check_quota(checked["cpus"], gpus)
        with translate(f"look for an existing instance {self.machine_name}"):
            try:
                gc.instances.get(project=c.project, zone=c.zone, instance=self.machine_name)
                exists = True
            except Exception as e:
                if not is_not_found(e):
                    raise
                exists = False
        if exists:
            raise GoogleError(f"an instance named {self.machine_name} already exists in {c.project}/{c.zone}",
                             "pick another machine name")
        self._checked = checked

    def _resolve_image(self) -> str:
        c = self.config
        project, name, family = image_path(c.machine_image, c.project)
        with translate("look up the image"):
            try:
                if family:
                    img = self.gc.images.get_from_family(project=project, family=name)
                else:
                    img = self.gc.images.get(project=project, image=name)
            except Exception as e:
                if is_not_found(e):
                    raise NotFound(f"image {c.machine_image} not found",
                                     "check --google-machine-image (gcloud compute images list)") from None
                raise
        link = img.self_link
        i = link.find("projects/")
        c.image_link = link[i:] if i >= 0 else link
        return c.image_link

    def _resolve_address(self) -> None:
        """--google-address may name a reserved address (docker-machine: name or IP): use its IP."""
        import ipaddress

        c = self.config
        try:
            ipaddress.ip_address(c.address)
            return
        except ValueError:
            pass
        with translate(f"look up address {c.address}"):
            try:
                addr = self.gc.addresses.get(project=c.project, region=c.region, address=c.address)
            except Exception as e:
                if is_not_found(e):
                    raise NotFound(f"no reserved address {c.address} in {c.project}/{c.region}",
                                   "reserve it first (gcloud compute addresses create) or pass its IP") from None
                raise
        c.address = addr.address

    def _check_quota(self, cpus: int, gpus) -> None:
        c = self.config
        with translate(f"read the quotas of region {c.region}"):
            region = self.gc.regions.get(project=c.project, region=c.region)
        quotas = {q.metric: q for q in region.quotas}
        needs = [("CPUS", cpus)]
        if not c.use_internal_ip_only and not c.address:
            needs.append(("IN_USE_ADDRESSES", 1))
        if gpus:
            needs.append((gpus[0].upper().replace("NVIDIA-TESLA-", "NVIDIA_").replace("-", "_") + "_GPUS", gpus[1]))
        for metric, need in needs:
            q = quotas.get(metric)
            if q is not None and q.usage + need > q.limit:
                raise QuotaExceeded(f"quota exceeded: {metric} in {c.region} has {q.usage:g} of {q.limit:g} in use, "
                                    f"{need} more needed",
                                    "free some, choose another --google-zone or machine type, or request more quota")

    # ---- create -----------------------------------------------------------------------------------
    def create(self) -> None:
        if self._checked is None:
            self.pre_create_check()
        from google.cloud import compute_v1 as cv

        c, gc, name = self.config, self.gc, self.machine_name
        c.ssh_key_path, public_key = keys.generate(self.machine_dir, comment=c.ssh_user)
        tag = self._firewall_name

        # 1. the machine's firewall rule
        fw_exists = True
        with translate("look up the firewall rule"):
            try:
                gc.firewalls.get(project=c.project, firewall=tag)
            except Exception as e:
                if not is_not_found(e):
                    raise
                fw_exists = False
        if not fw_exists:
            allowed = [cv.Allowed(I_p_protocol="tcp", ports=[str(c.ssh_port or 22), "2376"])]
            for item in c.open_ports:
                num, _, proto = str(item).partition("/")
                allowed.append(cv.Allowed(I_p_protocol=(proto or "tcp").lower(), ports=[num]))
            rules = [cv.Firewall(name=tag, network=f"global/networks/{c.network}", direction="INGRESS",
                                 target_tags=[tag], source_ranges=["0.0.0.0/0"], allowed=allowed,
                                 description=f"machine {name}: SSH, Docker engine and open ports")]
            self.journal.record("firewall", tag)
            with translate("create the firewall rule"):
                op = gc.firewalls.insert_unary(project=c.project, firewall_resource=rules[0])
            self._wait(op, "create the firewall rule", zone=False)
            swarm = cv.Firewall(name=f"{tag}-swarm"[:63], network=f"global/networks/{c.network}",
                                direction="INGRESS", target_tags=[tag], source_tags=[tag],
                                allowed=[cv.Allowed(I_p_protocol=p, ports=[port]) for p, port in SWARM_PORTS],
                                description=f"machine {name}: swarm between machines")
            self.journal.record("firewall", swarm.name)
            with translate("create the swarm firewall rule"):
                op = gc.firewalls.insert_unary(project=c.project, firewall_resource=swarm)
            self._wait(op, "create the swarm firewall rule", zone=False)

        # 2. the instance and its boot disk
        items = [cv.Items(key="ssh-keys", value=f"{c.ssh_user}:{public_key}")]
        for key, value in (c.metadata or {}).items():
            items.append(cv.Items(key=key, value=str(value)))
        for path, key in ((c.startup_script, "startup-script"), (c.user_data, "user-data")):
            if path:
                with open(os.path.expanduser(path)) as f:
                    items.append(cv.Items(key=key, value=f.read()))
        nic = cv.NetworkInterface(network=f"global/networks/{c.network}")
        if c.subnetwork:
            nic.subnetwork = f"regions/{c.region}/subnetworks/{c.subnetwork}"
        if not c.use_internal_ip_only:
            ac = cv.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")
            if c.address:
                ac.nat_i_p = c.address
            nic.access_configs = [ac]
        scheduling = cv.Scheduling(automatic_restart=not (c.preemptible or c.spot), preemptible=c.preemptible)
        if c.spot:
            scheduling.provisioning_model = "SPOT"
            scheduling.instance_termination_action = "STOP"
        policy = c.maintenance_policy or ("TERMINATE" if (c.accelerator or c.preemptible or c.spot) else "MIGRATE")
        scheduling.on_host_maintenance = policy
        instance = cv.Instance(
            name=name, machine_type=f"zones/{c.zone}/machineTypes/{c.machine_type}",
            disks=[cv.AttachedDisk(boot=True, auto_delete=True, type_="PERSISTENT", initialize_params=cv.AttachedDiskInitializeParams(
                disk_name=name, source_image=c.image_link, disk_size_gb=int(c.disk_size),
                disk_type=f"zones/{c.zone}/diskTypes/{c.disk_type}"))],
            network_interfaces=[nic], tags=cv.Tags(items=[tag] + [t for t in c.tags if t != tag]),
            labels=dict(c.labels or {}), metadata=cv.Metadata(items=items), scheduling=scheduling,
            service_accounts=[cv.ServiceAccount(email=c.service_account or "default", scopes=list(c.scopes))]
            if c.scopes else [])
        if c.accelerator:
            kind, count = parse_accelerator(c.accelerator)
            instance.guest_accelerators = [cv.AcceleratorConfig(
                accelerator_type=f"zones/{c.zone}/acceleratorTypes/{kind}", accelerator_count=count)]
        self.journal.record("disk", name)
        self.journal.record("instance", name)
        with translate(f"create instance {name} ({c.machine_type})"):
            op = gc.instances.insert_unary(project=c.project, zone=c.zone, instance_resource=instance)
        self._wait(op, f"create instance {name}")
        self._refresh_addresses()
        if not c.ip_address:
            raise GoogleError(f"instance {name} has no {'internal' if c.use_internal_ip else 'external'} address",
                              "check the network settings")
        log.info("instance %s is up at %s", name, c.ip_address)

    def _refresh_addresses(self):
        c = self.config
        with translate(f"read instance {self.machine_name}"):
            inst = self.gc.instances.get(project=c.project, zone=c.zone, instance=self.machine_name)
        c.instance_id = str(inst.id or "")
        nic = inst.network_interfaces[0] if inst.network_interfaces else None
        c.internal_ip = (nic.network_i_p if nic else "") or ""
        external = ""
        if nic and nic.access_configs:
            external = nic.access_configs[0].nat_i_p or ""
        c.ip_address = c.internal_ip if c.use_internal_ip else external
        return inst

    # ---- remove ----------------------------------------------------------------------------------
    def remove(self) -> None:
        entries = list(self.journal)
        if not entries:
            if not self.config.project:
                return
            # a docker-machine record: its instance (the disk goes with it); the shared
            # "docker-machines" firewall rule is left for its other machines
            entries = [{"kind": "instance", "id": self.machine_name}]
        remove_journaled(entries, order=REMOVE_ORDER, remove_entry=self._delete, translate=convert,
                         error_class=GoogleError, fatal=(AuthFailed,), log=log)

    def _delete(self, entry: dict) -> None:
        c, gc = self.config, self.gc
        kind, name = entry["kind"], entry["id"]
        try:
            if kind == "instance":
                op = gc.instances.delete_unary(project=c.project, zone=c.zone, instance=name)
                self._wait(op, f"delete instance {name}")
            elif kind == "disk":
                op = gc.disks.delete_unary(project=c.project, zone=c.zone, disk=name)
                self._wait(op, f"delete disk {name}")
            elif kind == "firewall":
                op = gc.firewalls.delete_unary(project=c.project, firewall=name)
                self._wait(op, f"delete firewall rule {name}", zone=False)
            else:
                log.warning("unknown journal entry %s %s: left alone", kind, name)
        except MachineError as e:
            if not (e.__cause__ is not None and is_not_found(e.__cause__)):
                raise
        except Exception as e:
            if not is_not_found(e):
                raise
        if any(x["kind"] == kind and x["id"] == name for x in self.journal.entries):
            self.journal.forget(kind, name)

    # ---- power ---------------------------------------------------------------------------------------
    def _action(self, action: str, what: str) -> None:
        c = self.config
        with translate(what):
            op = getattr(self.gc.instances, f"{action}_unary")(project=c.project, zone=c.zone,
                                                              instance=self.machine_name)
        self._wait(op, what)

    def start(self) -> None:
        if self.state() == State.RUNNING:
            return
        self._action("start", f"start instance {self.machine_name}")
        self._refresh_addresses()   # an ephemeral external address changes across stop/start

    def stop(self) -> None:
        self._action("stop", f"stop instance {self.machine_name}")

    def kill(self) -> None:
        """Compute Engine has no harder power-off for a project user than stop (docker-machine: Kill = Stop)."""
        self.stop()

    def restart(self) -> None:
        """Stop, then start (graceful; `reset` would be a hard reset)."""
        if self.state() != State.STOPPED:
            self.stop()
        self.start()

    def state(self) -> State:
        from .status import instance_status

        return STATUS_STATE.get(instance_status(self.config, self.machine_name), State.NONE)

    @classmethod
    def batch_states(cls, drivers: list["GoogleDriver"]) -> dict[str, State] | None:
        """One aggregated list per project and endpoint (`ls`), without the Compute SDK."""
        from .status import project_statuses

        out: dict[str, State] = {}
        groups: dict[tuple, list] = {}
        for d in drivers:
            groups.setdefault((d.config.project, d.config.endpoint), []).append(d)
        for members in groups.values():
            try:
                statuses = project_statuses(members[0].config)
            except MachineError:
                continue   # each machine is then asked on its own, and shows its own error
            for d in members:
                status = statuses.get((d.config.zone, d.machine_name))
                if status is not None:
                    out[d.machine_name] = STATUS_STATE.get(status, State.NONE)
        return out

    # ---- addresses --------------------------------------------------------------------------------------
    def addresses(self) -> list[str]:
        out = []
        for ip in (self.config.ip_address, self.config.internal_ip):
            if ip and ip not in out:
                out.append(ip)
        return out

    def private_address(self) -> str | None:
        return self.config.internal_ip or None


__all__ = ["GoogleDriver", "GoogleConfig"]
