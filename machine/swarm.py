"""Swarm mode: init, join, promote, demote, leave and list nodes, through the engine API.

Every call goes to the machine's engine over our mutual TLS with the Docker SDK for
Python (`docker`, imported inside the functions, so `ls` and `env` never load it).

Join tokens are read from a manager at the moment a node joins and handed straight to
the joining engine: they are never written to the store, never logged, never put in an
error message (`_redact` strips any that an engine echoes back).

What we keep is in the machine's own record (machine.json, `host.machine.extra["Swarm"]`):

    {"Role": "manager"|"worker", "NodeID": ..., "ClusterID": ..., "Name": swarm name,
     "AdvertiseAddr": ..., "Labels": {...}}

`Name` is the cluster name (`machine cluster`) or the machine that initialised the swarm;
`ls` shows it in the SWARM column. docker-machine's own SwarmOptions (its legacy Swarm)
are left untouched, so docker-machine never tries to start legacy swarm containers.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from .errors import MachineError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Machines
    from .model import Host

Reporter = Callable[[str], None]
RECORD_KEY = "Swarm"
ROLES = ("worker", "manager")
LISTEN_ADDR = "0.0.0.0:2377"
MIN_API_VERSION = "1.24"  # only until the engine says which version it speaks
_TOKEN_RE = re.compile(r"SWMTKN-[0-9A-Za-z-]+")


def _redact(text: str) -> str:
    return _TOKEN_RE.sub("SWMTKN-…", str(text))


# --------------------------------------------------------------------------- parsing

def parse_labels(items: Iterable[str] | dict | None) -> dict[str, str]:
    """KEY=VALUE items (a bare KEY means an empty value) into a dict; UsageError otherwise."""
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items or ():
        key, _, value = str(item).partition("=")
        key = key.strip()
        if not key or any(c.isspace() or c == "," for c in key):
            raise UsageError(f"invalid --swarm-node-label {item!r}", "write KEY=VALUE")
        out[key] = value.strip()
    return out


def validate_role(role: str) -> str:
    r = (role or "").strip().lower()
    if r not in ROLES:
        raise UsageError(f"invalid swarm role {role!r}", "choose worker or manager")
    return r


def record_of(host: "Host") -> dict:
    """The swarm facts kept for a machine ({} when it is in no swarm)."""
    rec = host.machine.extra.get(RECORD_KEY)
    return dict(rec) if isinstance(rec, dict) else {}


def label(host: "Host") -> str:
    """The SWARM column of `ls`: docker-machine showed "MASTER (master)" / "MASTER"; we show
    the swarm's name, with "(manager)" on managers."""
    rec = record_of(host)
    if not rec:
        return ""
    name = rec.get("Name") or ""
    if rec.get("Role") == "manager":
        return f"{name} (manager)" if name else "manager"
    return name or "worker"


# --------------------------------------------------------------------------- engine clients

def client_for(host: "Host", *, timeout: float = 60.0):
    """A docker.DockerClient for the machine's engine, over mutual TLS with the machine's CA and client cert."""
    try:
        import docker
        import docker.tls
        import requests.exceptions
    except ImportError:
        raise MachineError("swarm operations need the Docker SDK for Python",
                           "install it: pip install docker") from None
    url = host.url
    if not url:
        raise MachineError(f"machine {host.name} has no engine URL yet", f"is it running? machine start {host.name}")
    a = host.auth
    tls = docker.tls.TLSConfig(client_cert=(a.client_cert_path, a.client_key_path), ca_cert=a.ca_cert_path,
                               verify=True)
    base = url.replace("tcp://", "https://", 1)
    try:
        # No request yet (a fixed version): first stop requests from reading the environment, where
        # REQUESTS_CA_BUNDLE would replace the machine's CA and a proxy could catch loopback traffic.
        client = docker.DockerClient(base_url=base, tls=tls, timeout=int(timeout), version=MIN_API_VERSION)
        client.api.trust_env = False
        client.api._version = client.api._retrieve_server_version()  # what "auto" does, now with our CA
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise MachineError(f"cannot reach the engine of {host.name} at {url} ({_redact(_short(e))})",
                           f"is it running? machine status {host.name}") from None


def _short(e: BaseException) -> str:
    explanation = getattr(e, "explanation", None)
    return str(explanation or e).splitlines()[0] if str(explanation or e) else type(e).__name__


def _api_error(what: str, host: "Host", e: BaseException) -> MachineError:
    return MachineError(f"{what} on {host.name} failed: {_redact(_short(e))}")


def _call(what: str, host: "Host", fn, *a, **kw):
    """Run an SDK call; its errors become one redacted MachineError line."""
    import docker.errors
    import requests.exceptions

    try:
        return fn(*a, **kw)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise _api_error(what, host, e) from None


def swarm_info(client) -> dict:
    return client.info().get("Swarm") or {}


# --------------------------------------------------------------------------- facts

@dataclass
class NodeRow:
    """One row of `machine swarm ls`, as the manager reports the node."""

    id: str
    hostname: str
    machine: str
    role: str
    availability: str
    state: str
    manager_status: str
    address: str
    engine: str
    labels: dict

    def as_dict(self) -> dict:
        return dict(ID=self.id, Hostname=self.hostname, Machine=self.machine, Role=self.role,
                    Availability=self.availability, State=self.state, ManagerStatus=self.manager_status,
                    Address=self.address, EngineVersion=self.engine, Labels=self.labels)


def _node_row(node_attrs: dict, by_id: dict[str, str]) -> NodeRow:
    spec = node_attrs.get("Spec") or {}
    desc = node_attrs.get("Description") or {}
    status = node_attrs.get("Status") or {}
    mgr = node_attrs.get("ManagerStatus") or {}
    manager_status = ""
    if mgr:
        manager_status = "Leader" if mgr.get("Leader") else str(mgr.get("Reachability", "")).capitalize()
    nid = node_attrs.get("ID", "")
    hostname = desc.get("Hostname", "")
    return NodeRow(id=nid, hostname=hostname, machine=by_id.get(nid, ""), role=spec.get("Role", ""),
                   availability=str(spec.get("Availability", "")).capitalize(),
                   state=str(status.get("State", "")).capitalize(), manager_status=manager_status,
                   address=status.get("Addr", ""), engine=(desc.get("Engine") or {}).get("EngineVersion", ""),
                   labels=dict(spec.get("Labels") or {}))


# --------------------------------------------------------------------------- the operations

class Swarm:
    """Swarm operations on the machines of one store.

        sw = Swarm(Machines())
        sw.init("m1")
        sw.join("w1", manager="m1", role="worker", labels={"zone": "a"})
        for row in sw.ls("m1"): print(row.hostname, row.role, row.state)
        sw.leave("w1")
    """

    def __init__(self, api: "Machines", *, on_step: Reporter = lambda s: None):
        self.api = api
        self.on_step = on_step

    # ---- records -----------------------------------------------------------------
    def _save_record(self, name: str, rec: dict | None, *, locked: bool = False, host: "Host | None" = None) -> None:
        def apply(h):
            if rec:
                h.machine.extra[RECORD_KEY] = rec
            else:
                h.machine.extra.pop(RECORD_KEY, None)
            self.api.store.save(h)

        if host is not None and locked:
            apply(host)
            return
        with self.api.store.lock(name):
            h = self.api.store.load(name)
            apply(h)
            if host is not None:
                host.machine.extra = h.machine.extra

    def members(self, cluster_id: str, *, exclude: str = "") -> list[tuple[str, dict]]:
        """(machine, swarm record) of every machine recorded in swarm `cluster_id`."""
        out = []
        for name, host in self.api.store.load_all():
            if isinstance(host, MachineError) or name == exclude:
                continue
            rec = record_of(host)
            if rec and rec.get("ClusterID") == cluster_id:
                out.append((name, rec))
        return out

    def _manager_client(self, cluster_id: str, *, exclude: str = ""):
        """A client of a reachable manager of swarm `cluster_id` (other than `exclude`), or (None, None)."""
        for name, rec in self.members(cluster_id, exclude=exclude):
            if rec.get("Role") != "manager":
                continue
            try:
                host = self.api.load(name)
                client = client_for(host, timeout=15)
                if swarm_info(client).get("ControlAvailable"):
                    return host, client
            except Exception:
                continue
        return None, None

    # ---- live-restore ------------------------------------------------------------
    def _ready_for_swarm(self, host: "Host", client, *, locked: bool):
        """dockerd refuses swarm mode while live-restore is on: turn it off and re-provision."""
        info = _call("docker info", host, client.info)
        if not info.get("LiveRestoreEnabled"):
            return client
        if locked:
            raise MachineError(f"the engine of {host.name} has live-restore on, which swarm mode refuses",
                               "create swarm members with --no-engine-live-restore")
        self.on_step(f"turning live-restore off on {host.name} (swarm mode refuses it)")
        with self.api.store.lock(host.name):
            h = self.api.store.load(host.name)
            h.engine.live_restore = False
            self.api.store.save(h)
        self.api.provision(host.name, on_step=self.on_step)
        fresh = self.api.load(host.name)
        host.engine = fresh.engine
        return client_for(fresh)

    # ---- init --------------------------------------------------------------------
    def init(self, name: str, *, advertise_addr: str | None = None, labels: dict | None = None,
             swarm_name: str = "", host: "Host | None" = None, driver=None, locked: bool = False) -> dict:
        """Make machine `name` the first manager of a new swarm; returns its swarm record."""
        host = host or self.api.load(name)
        client = client_for(host)
        client = self._ready_for_swarm(host, client, locked=locked)
        adv = advertise_addr or self._default_advertise(host, driver)
        state = swarm_info(client)
        if state.get("LocalNodeState") == "active":
            if not state.get("ControlAvailable"):
                raise UsageError(f"{name} is already a worker in a swarm", f"leave it first: machine swarm leave {name}")
            self.on_step(f"{name} already manages a swarm")
        else:
            self.on_step(f"swarm init on {name}" + (f" (advertise {adv})" if adv else ""))
            kwargs = {"listen_addr": LISTEN_ADDR}
            if adv:
                kwargs["advertise_addr"] = adv
            _call("swarm init", host, client.swarm.init, **kwargs)
            state = swarm_info(client)
        rec = {"Role": "manager", "NodeID": state.get("NodeID", ""),
               "ClusterID": (state.get("Cluster") or {}).get("ID", ""), "Name": swarm_name or name,
               "AdvertiseAddr": adv or state.get("NodeAddr", ""), "Labels": dict(labels or {})}
        if labels:
            self._set_labels(host, client, rec["NodeID"], labels)
        self._save_record(name, rec, locked=locked, host=host)
        return rec

    def _default_advertise(self, host: "Host", driver=None) -> str | None:
        """The machine's private address, when its driver gives it one."""
        try:
            driver = driver or self.api.driver_for(host, persist=False)
            return driver.private_address() or None
        except MachineError:
            return None

    # ---- join ---------------------------------------------------------------------
    def join(self, name: str, *, manager: str, role: str = "worker", advertise_addr: str | None = None,
             labels: dict | None = None, host: "Host | None" = None, driver=None, locked: bool = False) -> dict:
        """Join machine `name` to the swarm that machine `manager` manages, as `role`."""
        role = validate_role(role)
        if manager == name:
            raise UsageError(f"{name} cannot join itself", "give another machine as --manager")
        mhost = self.api.load(manager)
        mclient = client_for(mhost)
        mstate = swarm_info(mclient)
        if not mstate.get("ControlAvailable"):
            raise UsageError(f"{manager} is not a swarm manager",
                             f"initialise one: machine swarm init {manager}, or name a manager")
        cluster_id = (mstate.get("Cluster") or {}).get("ID", "")
        remotes = [m["Addr"] for m in (mstate.get("RemoteManagers") or []) if m.get("Addr")]
        swarm_name = record_of(mhost).get("Name") or manager

        host = host or self.api.load(name)
        client = client_for(host, timeout=180)  # a join under a loaded TCG host takes a while
        client = self._ready_for_swarm(host, client, locked=locked)
        state = swarm_info(client)
        adv = advertise_addr or self._default_advertise(host, driver)
        if state.get("LocalNodeState") == "active":
            if (state.get("Cluster") or {}).get("ID", "") and (state.get("Cluster") or {}).get("ID") != cluster_id:
                raise UsageError(f"{name} is already in another swarm", f"leave it first: machine swarm leave {name}")
            if not state.get("Cluster") and state.get("NodeID") and not _node_in(mclient, state.get("NodeID")):
                raise UsageError(f"{name} is already in another swarm", f"leave it first: machine swarm leave {name}")
            self.on_step(f"{name} is already in the swarm of {manager}")
            node_id = state.get("NodeID", "")
            current = "manager" if state.get("ControlAvailable") else "worker"
            if current != role:
                self._set_role(mhost, mclient, node_id, role)
        else:
            self.on_step(f"swarm join {name} → {manager} as {role}")
            swarm_obj = _call("swarm inspect", mhost, lambda: mclient.swarm)  # GET /swarm: holds the tokens
            token = (swarm_obj.attrs.get("JoinTokens") or {}).get("Manager" if role == "manager" else "Worker")
            if not token:
                raise MachineError(f"{manager} gave no join token", "is it a manager of a healthy swarm?")
            kwargs = {"remote_addrs": remotes, "join_token": token, "listen_addr": LISTEN_ADDR}
            if adv:
                kwargs["advertise_addr"] = adv
            try:
                _call("swarm join", host, client.swarm.join, **kwargs)
            except MachineError as e:
                # dockerd gives up waiting after a while but keeps joining in the background
                if "continue in the background" not in e.message and "Timeout was reached" not in e.message:
                    raise
            finally:
                token = None
                kwargs.clear()
                swarm_obj.attrs.pop("JoinTokens", None)
                del swarm_obj
            node_id = self._wait_joined(host, client)
        rec = {"Role": role, "NodeID": node_id, "ClusterID": cluster_id, "Name": swarm_name,
               "AdvertiseAddr": adv or "", "Labels": dict(labels or {})}
        if labels:
            self._set_labels(mhost, mclient, node_id, labels)
        self._save_record(name, rec, locked=locked, host=host)
        return rec

    def _wait_joined(self, host: "Host", client, deadline_s: float = 120.0) -> str:
        end = time.monotonic() + deadline_s
        while True:
            state = swarm_info(client)
            if state.get("LocalNodeState") == "active" and state.get("NodeID"):
                return state["NodeID"]
            if time.monotonic() > end:
                raise MachineError(f"{host.name} did not become an active swarm node within {deadline_s:g}s "
                                   f"(state {state.get('LocalNodeState')!r}: {_redact(state.get('Error', ''))})")
            time.sleep(1)

    # ---- node updates -----------------------------------------------------------
    def _update_node(self, mhost: "Host", mclient, node_id: str, change: Callable[[dict], None],
                     what: str) -> None:
        for attempt in range(5):  # the node's version moves under us while it settles
            node = _call("node inspect", mhost, mclient.nodes.get, node_id)
            spec = dict(node.attrs.get("Spec") or {})
            change(spec)
            try:
                import docker.errors

                node.update(spec)
                return
            except docker.errors.APIError as e:
                if "update out of sequence" in str(e) and attempt < 4:
                    time.sleep(0.5)
                    continue
                raise _api_error(what, mhost, e) from None

    def _set_labels(self, mhost: "Host", mclient, node_id: str, labels: dict) -> None:
        def change(spec):
            spec["Labels"] = {**(spec.get("Labels") or {}), **labels}

        self._update_node(mhost, mclient, node_id, change, "node label")

    def _set_role(self, mhost: "Host", mclient, node_id: str, role: str) -> None:
        def change(spec):
            spec["Role"] = role

        self._update_node(mhost, mclient, node_id, change, f"node {'promote' if role == 'manager' else 'demote'}")

    def _set_role_by_name(self, name: str, role: str) -> dict:
        host = self.api.load(name)
        rec = record_of(host)
        if not rec:
            raise UsageError(f"{name} is in no swarm we know of", f"join it first: machine swarm join {name} --manager M")
        mhost, mclient = self._manager_client(rec["ClusterID"], exclude=name if role == "worker" else "")
        if mclient is None and role == "worker":
            mhost, mclient = self._manager_client(rec["ClusterID"])
        if mclient is None:
            raise MachineError(f"no manager of {name}'s swarm answers", "start one: machine start MANAGER")
        if role == "worker" and rec.get("Role") == "manager":
            managers = [n for n, r in self.members(rec["ClusterID"], exclude=name) if r.get("Role") == "manager"]
            if not managers:
                raise UsageError(f"{name} is the last manager of its swarm", "promote another node first")
        self.on_step(f"{'promote' if role == 'manager' else 'demote'} {name}")
        self._set_role(mhost, mclient, rec["NodeID"], role)
        rec["Role"] = role
        self._save_record(name, rec)
        return rec

    def promote(self, name: str) -> dict:
        return self._set_role_by_name(name, "manager")

    def demote(self, name: str) -> dict:
        return self._set_role_by_name(name, "worker")

    # ---- leave --------------------------------------------------------------------
    def leave(self, name: str, *, force: bool = False, host: "Host | None" = None, locked: bool = False,
              remove_node: bool = True) -> bool:
        """Take machine `name` out of its swarm (demoting it first if it manages), and drop its node
        from the managers' list. Refuses to remove the last manager of a swarm that still has
        workers unless `force`. Returns True if it was in a swarm."""
        host = host or self.api.load(name)
        rec = record_of(host)
        client = None
        state: dict = {}
        try:
            client = client_for(host, timeout=20)
            state = swarm_info(client)
        except MachineError as e:
            if not rec:
                return False
            self.on_step(f"{name}'s engine does not answer ({e.message}); removing its node through a manager")
        live = state.get("LocalNodeState") in ("active", "pending", "error", "locked")
        if not rec and not live:
            return False
        cluster_id = rec.get("ClusterID") or (state.get("Cluster") or {}).get("ID", "")
        node_id = rec.get("NodeID") or state.get("NodeID", "")
        is_manager = bool(state.get("ControlAvailable")) if client is not None and live else rec.get("Role") == "manager"
        other_mhost, other_mclient = self._manager_client(cluster_id, exclude=name) if cluster_id else (None, None)

        if is_manager and other_mclient is None:
            # The last manager we can reach: who else is in the swarm?
            others = []
            if client is not None and live:
                try:
                    others = [n for n in _call("node ls", host, client.nodes.list) if n.id != node_id]
                except MachineError:
                    others = []
            else:
                others = self.members(cluster_id, exclude=name)
            if others and not force:
                raise UsageError(f"{name} is the last manager of a swarm with {len(others)} other node(s)",
                                 f"remove or promote them first, or pass --force (the swarm then ends): "
                                 f"machine rm -f {name}")
        if client is not None and live:
            if is_manager and other_mclient is not None:
                self.on_step(f"demote {name}")
                try:
                    self._set_role(other_mhost, other_mclient, node_id, "worker")
                    self._wait_not_manager(client)
                except MachineError:
                    if not force:
                        raise
            self.on_step(f"swarm leave {name}")
            try:
                _call("swarm leave", host, client.swarm.leave, force=force or (is_manager and other_mclient is None))
            except MachineError:
                if not force:
                    raise
        if remove_node and other_mclient is not None and node_id:
            self._remove_node(other_mhost, other_mclient, node_id, demote=is_manager and (client is None or not live))
        self._save_record(name, None, locked=locked, host=host)
        return True

    def _wait_not_manager(self, client, deadline_s: float = 60.0) -> None:
        end = time.monotonic() + deadline_s
        while swarm_info(client).get("ControlAvailable") and time.monotonic() < end:
            time.sleep(1)

    def _remove_node(self, mhost: "Host", mclient, node_id: str, *, demote: bool) -> None:
        """Drop a node that left (or died) from the managers' list."""
        import docker.errors

        if demote:
            try:
                self._set_role(mhost, mclient, node_id, "worker")
            except MachineError:
                pass
        end = time.monotonic() + 60
        while True:
            try:
                node = mclient.nodes.get(node_id)
            except docker.errors.NotFound:
                return
            except docker.errors.DockerException as e:
                self.on_step(f"could not drop node {node_id[:12]} from the swarm: {_redact(_short(e))}")
                return
            try:
                node.remove(force=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as e:
                if time.monotonic() > end:
                    self.on_step(f"could not drop node {node_id[:12]} from the swarm: {_redact(_short(e))}")
                    return
                time.sleep(2)

    # ---- ls -----------------------------------------------------------------------
    def manager_of(self, name: str | None = None) -> str:
        """`name` if given, else the one machine recorded as a swarm manager."""
        if name:
            return name
        managers = sorted({n for n, h in self.api.store.load_all()
                           if not isinstance(h, MachineError) and record_of(h).get("Role") == "manager"})
        if not managers:
            raise UsageError("no machine is a swarm manager", "name one: machine swarm ls MANAGER")
        return managers[0]

    def ls(self, manager: str | None = None) -> list[NodeRow]:
        """The swarm's nodes as its manager reports them."""
        manager = self.manager_of(manager)
        host = self.api.load(manager)
        client = client_for(host, timeout=20)
        state = swarm_info(client)
        if not state.get("ControlAvailable"):
            raise UsageError(f"{manager} is not a swarm manager", "name a manager: machine swarm ls MANAGER")
        cluster_id = (state.get("Cluster") or {}).get("ID", "")
        by_id = {rec.get("NodeID"): n for n, rec in self.members(cluster_id)}
        nodes = _call("node ls", host, client.nodes.list)
        rows = [_node_row(n.attrs, by_id) for n in nodes]
        return sorted(rows, key=lambda r: (r.role != "manager", r.machine or r.hostname))


def _node_in(mclient, node_id: str) -> bool:
    try:
        mclient.nodes.get(node_id)
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------- create-time options

@dataclass
class SwarmRequest:
    """What `create --swarm-*` asks for, checked before anything is made."""

    role: str = ""                # "" (none), "manager" or "worker"
    join: str = ""                # the manager machine to join through ("" with role manager: init)
    advertise_addr: str = ""
    labels: dict | None = None
    name: str = ""                # the swarm's name (cluster name) for a new swarm

    @classmethod
    def from_flags(cls, *, manager: bool = False, worker: bool = False, join: str = "",
                   advertise_addr: str = "", labels: Iterable[str] = ()) -> "SwarmRequest | None":
        if manager and worker:
            raise UsageError("--swarm-manager and --swarm-worker exclude each other", "choose one")
        if worker and not join:
            raise UsageError("--swarm-worker needs --swarm-join MANAGER_MACHINE",
                             "name the machine that manages the swarm")
        if not (manager or worker):
            if join or advertise_addr or labels:
                raise UsageError("--swarm-join, --swarm-advertise-addr and --swarm-node-label need "
                                 "--swarm-manager or --swarm-worker")
            return None
        return cls(role="manager" if manager else "worker", join=join or "", advertise_addr=advertise_addr or "",
                   labels=parse_labels(labels))

    def check(self, api: "Machines", name: str) -> None:
        """Before create: the manager to join exists and is one (by its record)."""
        if self.join:
            if self.join == name:
                raise UsageError(f"{name} cannot join itself", "give another machine to --swarm-join")
            host = api.load(self.join)
            if record_of(host).get("Role") != "manager":
                raise UsageError(f"{self.join} is not a swarm manager",
                                 f"create it with --swarm-manager, or run: machine swarm init {self.join}")

    def apply(self, api: "Machines", host: "Host", driver, on_step: Reporter) -> dict:
        """The create step: init or join, with the record saved by the caller (lock held)."""
        sw = Swarm(api, on_step=on_step)
        adv = self.advertise_addr or None
        if self.role == "manager" and not self.join:
            return sw.init(host.name, advertise_addr=adv, labels=self.labels, swarm_name=self.name,
                           host=host, driver=driver, locked=True)
        return sw.join(host.name, manager=self.join, role=self.role, advertise_addr=adv, labels=self.labels,
                       host=host, driver=driver, locked=True)


LEGACY_FLAGS = ("--swarm", "--swarm-master", "--swarm-discovery", "--swarm-image", "--swarm-strategy",
                "--swarm-host", "--swarm-addr", "--swarm-opt", "--swarm-join-opt", "--swarm-experimental")

LEGACY_MESSAGE = ("docker-machine's standalone Swarm ({flag}) is gone; use swarm mode: "
                  "--swarm-manager (new swarm), --swarm-worker --swarm-join MANAGER, or machine cluster create")
