"""Driver `openstack`: a server on an OpenStack cloud through openstacksdk.

docker-machine's flags and config.json fields, plus clouds.yaml, server groups, boot from
volume, tags and metadata. Every resource is journaled the moment it exists — and, for the
short moment between asking the cloud for it and learning its ID, as a "pending" entry that
`rm` resolves by the create's token — so a failed or interrupted create leaves nothing.

openstacksdk is imported only inside methods: `machine ls`/`env` never load it.
"""
from __future__ import annotations

import base64
import logging
import os
import time
import uuid

from ...driver import Capabilities, Driver, remove_journaled
from ...errors import NotFound, UsageError
from ...model import State
from . import keys, resources
from .errors import ActiveTimeout, AuthFailed, OpenStackError, convert, is_definitive_http_error, translate
from .options import DEFAULT_ACTIVE_TIMEOUT, DEFAULT_IP_VERSION, OpenStackConfig

__all__ = ["OpenStackConfig", "OpenStackDriver"]

log = logging.getLogger("machine.drivers.openstack")

# Nova server status -> docker-machine state
STATUS_STATE = {
    "ACTIVE": State.RUNNING,
    "BUILD": State.STARTING, "BUILDING": State.STARTING, "REBUILD": State.STARTING,
    "REBOOT": State.STARTING, "HARD_REBOOT": State.STARTING, "MIGRATING": State.RUNNING,
    "RESIZE": State.RUNNING, "VERIFY_RESIZE": State.RUNNING, "PASSWORD": State.RUNNING,
    "PAUSED": State.PAUSED,
    "SUSPENDED": State.SAVED,
    "SHUTOFF": State.STOPPED, "SHELVED": State.STOPPED, "SHELVED_OFFLOADED": State.STOPPED,
    "STOPPED": State.STOPPED, "RESCUE": State.ERROR,
    "ERROR": State.ERROR,
    "DELETED": State.NONE, "SOFT_DELETED": State.NONE, "UNKNOWN": State.NONE,
}

# rm order: release the address, then the server (its volumes and ports go with it), then the
# rest in reverse order of creation (volume, port, server group, security group, key pair).
#: what goes first at rm (a dependent before what it depends on); the rest after
REMOVE_ORDER = ("floating_ip", "server")


class OpenStackDriver(Driver):
    name = "openstack"
    description = "a server on an OpenStack cloud (openstacksdk; clouds.yaml, OS_* or flags)"
    Config = OpenStackConfig
    capabilities = Capabilities(cloud=True, private_network=True)
    config: OpenStackConfig

    #: seconds between status polls (tests shorten it)
    poll_interval: float = 2.0
    #: seconds to wait for a deleted server/volume to disappear, or a security group to be free
    delete_timeout: float = 180.0

    def __init__(self, config: OpenStackConfig, ctx):
        super().__init__(config, ctx)
        self._conn = None
        self._resolved: dict | None = None

    # ---- connection ---------------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            from .connection import connect

            self._conn = connect(self.config)
        return self._conn

    @property
    def _ip_version(self) -> int:
        return int(self.config.ip_version or DEFAULT_IP_VERSION)

    @property
    def _active_timeout(self) -> float:
        value = self.config.active_timeout
        return float(DEFAULT_ACTIVE_TIMEOUT if value in (None, "") else value)

    # ---- pre-create check: creates nothing ----------------------------------------------
    def pre_create_check(self) -> None:
        conn = self.conn
        with translate("authenticate"):
            conn.authorize()
        self._resolve()

    def _resolve(self) -> dict:
        """Look up (and check) everything create() needs; one clear error per failure."""
        if self._resolved is not None:
            return self._resolved
        c, conn = self.config, self.conn
        r: dict = {}
        with translate("look up the flavor"):
            r["flavor"] = resources.find_flavor(conn, c.flavor_name, c.flavor_id)
        with translate("look up the image"):
            r["image"] = resources.find_image(conn, c.image_name, c.image_id)
        with translate("look up the network"):
            r["network"] = resources.find_network(conn, c.net_name, c.net_id)
        if c.sec_groups:
            with translate("look up the security groups"):
                r["secgroups"] = resources.find_security_groups(conn, c.sec_groups)
        if c.keypair_name:
            with translate("look up the key pair"):
                r["keypair"] = resources.find_keypair(conn, c.keypair_name)
        if c.floatingip_pool:
            with translate("look up the floating IP pool"):
                r["pool"] = resources.find_floating_pool(conn, c.floatingip_pool)
        if c.server_group:
            with translate("look up the server group"):
                r["server_group"] = resources.find_server_group(conn, c.server_group)
        with translate("check the quota"):
            resources.check_quota(conn, r["flavor"])
        # docker-machine's resolveIds: the IDs go into config.json
        c.flavor_id = r["flavor"].id
        c.image_id = r["image"].id
        c.net_id = r["network"].id
        if "pool" in r:
            c.floating_ip_pool_id = r["pool"].id
        self._resolved = r
        return r

    # ---- create -------------------------------------------------------------------------
    def create(self) -> None:
        if self._resolved is None:
            self.pre_create_check()
        r = self._resolved
        c, conn, name = self.config, self.conn, self.machine_name
        token = uuid.uuid4().hex[:16]
        owner = resources.owner_text(name, token)

        # 1. SSH key and key pair
        if c.keypair_name:
            c.ssh_key_path = keys.copy_private(os.path.expanduser(c.private_key_file), self.machine_dir)
            c.existing_key = True
            key_name = c.keypair_name
        else:
            if c.private_key_file:
                src = os.path.expanduser(c.private_key_file)
                public = keys.public_key_of(src)
                c.ssh_key_path = keys.copy_private(src, self.machine_dir)
            else:
                c.ssh_key_path, public = keys.generate(self.machine_dir, comment=f"machine-{name}")
            key_name = name
            self._journaled("keypair", "import the key pair", token,
                            lambda: resources.create_keypair(conn, key_name, public),
                            id_of=lambda kp: kp.name, name=key_name, public_key=public)
            c.keypair_name = key_name
            c.existing_key = False

        # 2. security groups: the given ones, or one of our own with SSH, engine and swarm ports
        if r.get("secgroups"):
            group_ids = [g.id for g in r["secgroups"]]
        else:
            group_name = f"machine-{name}"
            group = self._journaled(
                "secgroup", "create the security group", token,
                lambda: resources.create_security_group(conn, group_name, owner),
                name=group_name)
            with translate("add the security group rules"):
                resources.add_machine_rules(conn, group.id, int(c.ssh_port or 22), self._ip_version)
            group_ids = [group.id]
            c.security_group_id = group.id

        # 3. server group: join an existing one, or create it
        hints = {}
        if c.server_group:
            group = r.get("server_group")
            if group is None:
                policy = c.server_group_policy or "anti-affinity"
                group = self._journaled(
                    "server_group", "create the server group", token,
                    lambda: resources.create_server_group(conn, c.server_group, policy),
                    name=c.server_group, policy=policy)
            hints["group"] = group.id
            c.server_group_id = group.id

        # 4. the port (ours, so its security groups, address and deletion are under our control)
        port = self._journaled(
            "port", "create the port", token,
            lambda: resources.create_port(conn, name, r["network"].id, group_ids, owner), name=name)

        # 5. the server
        metadata = dict(c.metadata or {})
        metadata.update({resources.TOKEN_KEY: token, "machine-name": name})
        attrs = dict(name=name, flavor_id=r["flavor"].id, networks=[{"port": port.id}],
                     key_name=key_name, metadata=metadata)
        size = int(c.volume_size or 0)
        if c.boot_from_volume or size:
            size = size or int(getattr(r["flavor"], "disk", 0) or 0)
            if not size:
                raise UsageError("the flavor has no disk size to make the boot volume from",
                                 "pass --openstack-volume-size GiB")
            bdm = {"boot_index": 0, "uuid": r["image"].id, "source_type": "image",
                   "destination_type": "volume", "volume_size": size, "delete_on_termination": True}
            if c.volume_type:
                bdm["volume_type"] = c.volume_type
            attrs["block_device_mapping"] = [bdm]
        else:
            attrs["image_id"] = r["image"].id
        if c.availability_zone:
            attrs["availability_zone"] = c.availability_zone
        if c.config_drive:
            attrs["config_drive"] = True
        if c.user_data_file:
            with open(os.path.expanduser(c.user_data_file), "rb") as f:
                attrs["user_data"] = base64.b64encode(f.read()).decode()
        if c.tags:
            attrs["tags"] = list(c.tags)
        if hints:
            attrs["scheduler_hints"] = hints
        server = self._journaled("server", "create the server", token,
                                 lambda: resources.create_server(conn, **attrs), name=name)
        c.machine_id = server.id

        # 6. wait for ACTIVE (journaling the boot volume as soon as it shows up)
        server = self._wait_status(server.id, "ACTIVE", self._active_timeout, "become ACTIVE",
                                   on_poll=self._journal_volumes)

        # 7. addresses: floating IP when a pool is given, else the fixed one of --openstack-ip-version
        with translate("read the port's address"):
            port = conn.network.get_port(port.id)
        fixed = resources.fixed_ip(port, server.addresses, self._ip_version)
        c.private_ip_address = fixed
        address = fixed
        if r.get("pool"):
            fip = self._journaled(
                "floating_ip", "allocate the floating IP", token,
                lambda: resources.create_floating_ip(conn, r["pool"].id, port.id, owner), name=name)
            address = fip.floating_ip_address
            c.floating_ip = address
        if not address:
            raise OpenStackError(f"server {name} has no IPv{self._ip_version} address",
                                 "choose another network or --openstack-ip-version")
        c.ip_address = address
        log.info("server %s (%s) is ACTIVE at %s", name, server.id, address)

    def _journaled(self, kind: str, action: str, token: str, create, id_of=lambda res: res.id, **attrs):
        """Create one resource, journaled before the call (pending) and after it (with its ID)."""
        pending_id = f"pending-{kind}-{token}"
        self.journal.record(kind, pending_id, pending=True, token=token, **attrs)
        try:
            with translate(action):
                res = create()
        except BaseException as exc:
            # The cloud said no: nothing was created. Anything else (Ctrl-C, a lost
            # connection, a 5xx) may have created it: rm looks for it by the token.
            if isinstance(exc, Exception) and is_definitive_http_error(exc):
                self.journal.forget(kind, pending_id)
            raise
        self.journal.record(kind, id_of(res), **{k: v for k, v in attrs.items() if k != "public_key"})
        self.journal.forget(kind, pending_id)
        return res

    def _journal_volumes(self, server) -> None:
        known = {e["id"] for e in self.journal.of_kind("volume")}
        for volume in getattr(server, "attached_volumes", None) or []:
            vid = volume.get("id") if isinstance(volume, dict) else getattr(volume, "id", None)
            if vid and vid not in known:
                self.journal.record("volume", vid, server=server.id)
                known.add(vid)

    def _wait_status(self, server_id: str, want: str, timeout: float, what: str, on_poll=None):
        deadline = time.monotonic() + timeout
        status = "?"
        while True:
            with translate(f"wait for the server to {what}"):
                server = self.conn.compute.get_server(server_id)
            if on_poll:
                on_poll(server)
            status = server.status
            if status == want:
                return server
            if status == "ERROR":
                fault = (server.fault or {}).get("message") if isinstance(server.fault, dict) else server.fault
                raise OpenStackError(f"server {self.machine_name} went to ERROR: {fault or 'no fault given'}",
                                     "check the flavor, image and network, or the cloud's capacity")
            if time.monotonic() >= deadline:
                raise ActiveTimeout(f"server {self.machine_name} did not {what} within {timeout:.0f}s "
                                    f"(status {status})", "raise --openstack-active-timeout, or check the cloud")
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())) or 0.01)

    # ---- remove: everything in the journal, in reverse order; missing is fine ----------
    def remove(self) -> None:
        entries = list(self.journal)
        legacy = []
        if not entries and self.config.machine_id:
            # A record written by docker-machine has no journal: its server and the key
            # pair it made are what there is.
            legacy.append({"kind": "server", "id": self.config.machine_id})
            kp = self.config.keypair_name
            if kp and not self.config.existing_key and kp.startswith(self.machine_name):
                legacy.append({"kind": "keypair", "id": kp})
        todo = entries + legacy
        if not todo:
            return
        remove_journaled(todo, order=REMOVE_ORDER, remove_entry=self._remove_entry, translate=convert,
                         error_class=OpenStackError, fatal=(UsageError, AuthFailed), log=log)

    def _remove_entry(self, entry: dict) -> None:
        kind, rid = entry["kind"], entry["id"]
        conn = self.conn
        ids = resources.find_owned(conn, kind, entry) if entry.get("pending") else [rid]
        wait, interval = self.delete_timeout, self.poll_interval
        for one in ids:
            if kind == "server":
                resources.delete_server(conn, one, wait, interval)
            elif kind == "volume":
                resources.delete_volume(conn, one, wait, interval)
            elif kind == "floating_ip":
                resources.delete_floating_ip(conn, one)
            elif kind == "port":
                resources.delete_port(conn, one)
            elif kind == "secgroup":
                resources.delete_security_group(conn, one, wait, interval)
            elif kind == "keypair":
                resources.delete_keypair(conn, one)
            elif kind == "server_group":
                if not resources.delete_server_group_if_empty(conn, one):
                    log.warning("server group %s still has members: left for them", entry.get("name") or one)
            else:
                log.warning("unknown journal entry %s %s: left alone", kind, one)
        if kind == "server" and self.config.machine_id in ids + [rid]:
            self.config.machine_id = ""   # gone: a later rm has nothing to look for
        if entry in self.journal.entries:
            self.journal.forget(kind, rid)

    # ---- power --------------------------------------------------------------------------
    def _server_id(self) -> str:
        sid = self.config.machine_id
        if not sid:
            raise NotFound(f"machine {self.machine_name} has no server", "it was never created or is removed")
        return sid

    def _get_server(self):
        with translate("look up the server"):
            return self.conn.compute.get_server(self._server_id())

    def start(self) -> None:
        server = self._get_server()
        if server.status == "ACTIVE":
            return
        with translate("start the server"):
            self.conn.compute.start_server(server.id)
        self._wait_status(server.id, "ACTIVE", self._active_timeout, "start")

    def stop(self) -> None:
        server = self._get_server()
        if server.status == "SHUTOFF":
            return
        with translate("stop the server"):
            self.conn.compute.stop_server(server.id)
        self._wait_status(server.id, "SHUTOFF", self._active_timeout, "stop")

    def kill(self) -> None:
        # Nova has no harder power-off for a project user than os-stop (docker-machine: Kill = Stop).
        self.stop()

    def restart(self) -> None:
        server = self._get_server()
        if server.status == "SHUTOFF":
            self.start()
            return
        with translate("reboot the server"):
            self.conn.compute.reboot_server(server.id, "SOFT")
        time.sleep(min(self.poll_interval, 1.0))
        self._wait_status(server.id, "ACTIVE", self._active_timeout, "reboot")

    def state(self) -> State:
        server = self._get_server()
        return STATUS_STATE.get(str(server.status or "").upper(), State.NONE)

    def stopped_reason(self) -> str | None:
        # One GET /servers/ID per probe (every 10 s of an SSH wait): a server shut off, gone
        # to ERROR or deleted during the create fails it now, not at the SSH deadline.
        try:
            server = self._get_server()
        except NotFound as e:
            return e.message
        status = str(server.status or "").upper()
        if status != "DELETED" and STATUS_STATE.get(status) not in (State.STOPPED, State.ERROR):
            return None
        fault = server.fault.get("message") if isinstance(server.fault, dict) else server.fault
        return f"server {server.id} is {status}" + (f": {fault}" if fault else "")

    # ---- addresses ----------------------------------------------------------------------
    def addresses(self) -> list[str]:
        out = []
        for ip in (self.config.ip_address, self.config.private_ip_address):
            if ip and ip not in out:
                out.append(ip)
        return out
