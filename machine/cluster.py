"""Whole swarm clusters: NAME-manager-1…, NAME-worker-1…, a private network, swarm formed,
and a docker context NAME pointing at a manager.

    from machine.cluster import Cluster
    with Cluster.create("c1", managers=1, workers=2, driver="qemu",
                        driver_options={"memory": 768}) as c:
        c.docker("service", "ls")          # the docker CLI through the context "c1"
        print([n.machine for n in c.nodes()])
    # leaving the block removed every machine it made

Membership is recorded on each machine (machine.json: Machine.Labels["machine.cluster"]
and Machine.Extra["Cluster"] = the driver and options used, for `scale`), so any
member is enough to find, grow or remove the cluster. Secret driver options are
never recorded there (each machine keeps its own in the keyring or its 0600 file).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import MachineError, UsageError
from .swarm import Swarm, record_of

if TYPE_CHECKING:  # pragma: no cover
    from .api import Machines
    from .batch import BatchResult, Progress

CLUSTER_LABEL = "machine.cluster"
ROLE_LABEL = "machine.cluster.role"
RECORD_KEY = "Cluster"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$")


def validate_cluster_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise UsageError(f"invalid cluster name {name!r}",
                         "use letters, digits, '-', '_' and '.', starting with a letter or digit (41 at most)")
    return name


def member_name(cluster: str, role: str, index: int) -> str:
    return f"{cluster}-{role}-{index}"


_MEMBER_RE_CACHE: dict[str, re.Pattern] = {}


def parse_member(cluster: str, machine: str) -> tuple[str, int] | None:
    """("manager"|"worker", index) for a member name of `cluster`, else None."""
    pat = _MEMBER_RE_CACHE.setdefault(cluster, re.compile(rf"^{re.escape(cluster)}-(manager|worker)-(\d+)$"))
    m = pat.match(machine)
    return (m.group(1), int(m.group(2))) if m else None


@dataclass
class Member:
    machine: str
    role: str          # the role the cluster gave it ("manager"/"worker"); the swarm may say otherwise later
    index: int


class ClusterFailed(MachineError):
    """A cluster create failed; `result` holds every machine's outcome."""

    def __init__(self, message: str, hint: str | None = None, result: "BatchResult | None" = None):
        super().__init__(message, hint)
        self.result = result


class Cluster:
    """A swarm cluster of machines in one store."""

    def __init__(self, name: str, api: "Machines | None" = None, *, remove_on_exit: bool = True):
        from .api import Machines

        self.name = validate_cluster_name(name)
        self.api = api or Machines()
        self.remove_on_exit = remove_on_exit
        #: the docker config dir its contexts are written to (the environment's when it was made)
        self.docker_config = os.environ.get("DOCKER_CONFIG") or None

    # ---- what it is -----------------------------------------------------------------
    def members(self) -> list[Member]:
        out = []
        for machine, host in self.api.store.load_all():
            if isinstance(host, MachineError):
                parsed = parse_member(self.name, machine)
                if parsed:
                    out.append(Member(machine, *parsed))
                continue
            if host.machine.labels.get(CLUSTER_LABEL) != self.name:
                continue
            parsed = parse_member(self.name, machine) or ("worker", 0)
            role = host.machine.labels.get(ROLE_LABEL) or parsed[0]
            out.append(Member(machine, role, parsed[1]))
        return sorted(out, key=lambda m: (m.role != "manager", m.index, m.machine))

    @property
    def managers(self) -> list[str]:
        return [m.machine for m in self.members() if m.role == "manager"]

    @property
    def workers(self) -> list[str]:
        return [m.machine for m in self.members() if m.role == "worker"]

    @property
    def machines(self) -> list[str]:
        return [m.machine for m in self.members()]

    def exists(self) -> bool:
        return bool(self.members())

    def spec(self) -> dict:
        """The driver and options the cluster was made with (from any member's record)."""
        for m in self.members():
            try:
                rec = self.api.load(m.machine).machine.extra.get(RECORD_KEY)
            except MachineError:
                continue
            if isinstance(rec, dict):
                return rec
        raise MachineError(f"cluster {self.name} has no readable member", f"see: machine ls --filter name={self.name}-")

    @property
    def context(self) -> str:
        """The docker context pointing at a manager."""
        return self.name

    def manager(self) -> str:
        """A manager that answers as one (the first that does)."""
        for m in self.managers:
            try:
                host = self.api.load(m)
                from .swarm import client_for, swarm_info

                if swarm_info(client_for(host, timeout=10)).get("ControlAvailable"):
                    return m
            except Exception:
                continue
        if self.managers:
            return self.managers[0]
        raise MachineError(f"cluster {self.name} has no manager", f"see: machine cluster ls")

    def nodes(self):
        """The swarm's nodes as a manager reports them (machine.swarm.NodeRow)."""
        return Swarm(self.api).ls(self.manager())

    def env(self) -> dict:
        """Environment for the docker CLI (or docker SDK's from_env) to talk to a manager."""
        manager = self.manager()
        host = self.api.load(manager)
        return {"DOCKER_HOST": host.url, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.api.store.machine_dir(manager))}

    def docker(self, *args: str, check: bool = True, timeout: float = 300, input: bytes | None = None,
               node: str | None = None) -> subprocess.CompletedProcess:
        """Run the docker CLI through the cluster's context (or a member's own, with node=)."""
        from .api import context_name

        ctx = context_name(node) if node else self.context
        env = dict(os.environ)
        if self.docker_config:
            env["DOCKER_CONFIG"] = self.docker_config
        p = subprocess.run(["docker", "--context", ctx, *args], capture_output=True, timeout=timeout,
                           input=input, text=input is None, env=env)
        if check and p.returncode != 0:
            err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
            raise MachineError(f"docker {' '.join(args)} failed on {ctx}: {err.strip()[-500:]}")
        return p

    def client(self):
        """A docker.DockerClient for a manager (mutual TLS)."""
        from .swarm import client_for

        return client_for(self.api.load(self.manager()))

    # ---- create ----------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, *, managers: int = 1, workers: int = 0, driver: str = "qemu",
               driver_options: dict | None = None, api: "Machines | None" = None, parallel: int | None = None,
               progress: "Progress | None" = None, keep_on_failure: bool = False, remove_on_exit: bool = True,
               reuse: bool = False, on_step: Callable[[str], None] = lambda s: None, **create_kw) -> "Cluster":
        """Make the machines in parallel, then form the swarm; on any failure remove all of it
        (unless keep_on_failure). With reuse=True an existing cluster of that name is returned
        as it is (and not removed on exit)."""
        self = cls(name, api, remove_on_exit=remove_on_exit)
        if self.exists():
            if reuse:
                self.remove_on_exit = False
                return self
            raise UsageError(f"cluster {name} already exists", f"remove it first: machine cluster rm {name}")
        if managers < 1:
            raise UsageError(f"invalid --managers {managers}", "a cluster needs at least one manager")
        if workers < 0:
            raise UsageError(f"invalid --workers {workers}", "give 0 or more")
        names = [member_name(name, "manager", i) for i in range(1, managers + 1)] + \
                [member_name(name, "worker", i) for i in range(1, workers + 1)]
        self._make(names, driver, dict(driver_options or {}), parallel=parallel, progress=progress,
                   keep_on_failure=keep_on_failure, on_step=on_step, new=True, **create_kw)
        return self

    def _options(self, driver: str, driver_options: dict) -> tuple[dict, dict]:
        """(options for each machine, options to record): the private network chosen where the
        driver has one to choose (an option named "network" and the private_network capability)."""
        from .driver import get_driver_class

        cls = get_driver_class(driver)
        opts = dict(driver_options)
        fields = {s.field for s in cls.Config.options()}
        if cls.capabilities.private_network and "network" in fields and not opts.get("network"):
            opts["network"] = self.name
        secret = {s.field for s in cls.Config.settings() if s.secret} | \
                 {s.flag for s in cls.Config.settings() if s.secret and s.flag}
        recorded = {k: v for k, v in opts.items() if k not in secret}
        return opts, recorded

    def _make(self, names: Sequence[str], driver: str, driver_options: dict, *, parallel, progress,
              keep_on_failure: bool, on_step, new: bool, **create_kw) -> "BatchResult":
        from .batch import PlainProgress, create_many
        from .driver import get_driver_class

        opts, recorded = self._options(driver, driver_options)
        driver = get_driver_class(driver).name
        spec = {"Name": self.name, "Driver": driver, "Options": recorded}
        engine = create_kw.pop("engine", None)
        if engine is not None:
            engine.live_restore = False

        def labels_for(machine: str) -> dict:
            role = (parse_member(self.name, machine) or ("worker", 0))[0]
            return {CLUSTER_LABEL: self.name, ROLE_LABEL: role}

        made: list[str] = []
        result = None
        try:
            result = create_many(self.api, names, driver, opts, parallel=parallel, labels_for=labels_for,
                                 progress=progress or PlainProgress(), engine=_swarm_engine(engine),
                                 keep_on_failure=keep_on_failure, **create_kw)
            made = [r.name for r in result.succeeded]
            for m in made:
                with self.api.store.lock(m):
                    h = self.api.store.load(m)
                    h.machine.extra[RECORD_KEY] = spec
                    self.api.store.save(h)
            if not result.ok:
                why = "; ".join(f"{r.name}: {r.error.splitlines()[0] if r.error else 'not started'}"
                                for r in result.failed)
                raise ClusterFailed(f"cluster {self.name}: {len(result.failed)} of {len(names)} machines failed ({why})",
                                    result=result)
            self._form_swarm(names, new=new, on_step=on_step)
            if new or not _context_exists(self.name):
                self._write_context()
            return result
        except BaseException as e:
            if keep_on_failure and not isinstance(e, KeyboardInterrupt):
                raise
            on_step(f"removing what cluster {self.name} made")
            for m in reversed(self.machines if new else made):
                try:
                    self.api.rm(m, force=True, on_step=on_step)
                except MachineError as e2:
                    on_step(f"could not remove {m}: {e2}")
            if new:
                self._remove_context()
            if isinstance(e, ClusterFailed) or isinstance(e, KeyboardInterrupt):
                raise
            if isinstance(e, MachineError):
                raise ClusterFailed(f"cluster {self.name}: {e.message}", e.hint, result=result) from e
            raise

    def _form_swarm(self, names: Sequence[str], *, new: bool, on_step) -> None:
        """Init on the first manager, then join the rest: managers first, workers in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        sw = Swarm(self.api, on_step=on_step)
        mgrs = [n for n in names if (parse_member(self.name, n) or ("worker",))[0] == "manager"]
        wrks = [n for n in names if n not in mgrs]
        if new:
            first, mgrs = mgrs[0], mgrs[1:]
            sw.init(first, swarm_name=self.name, labels={ROLE_LABEL: "manager"})
            lead = first
        else:
            lead = self.manager()
        for m in mgrs:
            sw.join(m, manager=lead, role="manager", labels={ROLE_LABEL: "manager"})
        if wrks:
            with ThreadPoolExecutor(max_workers=min(4, len(wrks))) as pool:
                list(pool.map(lambda w: sw.join(w, manager=lead, role="worker", labels={ROLE_LABEL: "worker"}),
                              wrks))

    def _write_context(self) -> None:
        from . import clientconfig, layout

        manager = self.managers[0]
        host = self.api.load(manager)
        mdir = self.api.store.machine_dir(manager)
        if self.api.store.exists(self.name):
            raise UsageError(f"a machine is named {self.name}, like the cluster's context")
        clientconfig.write_context(
            self.name, docker_host=host.url, ca_pem=(mdir / layout.CA_CERT).read_bytes(),
            cert_pem=(mdir / layout.CLIENT_CERT).read_bytes(), key_pem=(mdir / layout.CLIENT_KEY).read_bytes(),
            description=f"machine cluster {self.name} (manager {manager})")

    def _remove_context(self) -> None:
        from . import clientconfig

        if clientconfig.context_exists(self.name):
            clientconfig.remove_context(self.name)

    # ---- scale ---------------------------------------------------------------------------
    def scale(self, *, workers: int, parallel: int | None = None, progress: "Progress | None" = None,
              on_step: Callable[[str], None] = lambda s: None, **create_kw) -> list[str]:
        """Add workers (made with the cluster's driver and options, then joined) or remove the
        newest ones (each leaves the swarm first) until there are `workers`. Returns the
        machines added or removed."""
        if workers < 0:
            raise UsageError(f"invalid --workers {workers}", "give 0 or more")
        if not self.exists():
            raise UsageError(f"no cluster {self.name}", "see: machine cluster ls")
        current = [m for m in self.members() if m.role == "worker"]
        if workers > len(current):
            spec = self.spec()
            used = {m.index for m in current}
            new, i = [], 0
            while len(new) < workers - len(current):
                i += 1
                if i not in used and not self.api.store.exists(member_name(self.name, "worker", i)):
                    new.append(member_name(self.name, "worker", i))
            self._make(new, spec["Driver"], dict(spec.get("Options") or {}), parallel=parallel,
                       progress=progress, keep_on_failure=False, on_step=on_step, new=False, **create_kw)
            return new
        gone = [m.machine for m in sorted(current, key=lambda m: m.index, reverse=True)[:len(current) - workers]]
        for m in gone:
            self.api.rm(m, on_step=on_step)
        return gone

    # ---- rm ------------------------------------------------------------------------------
    def rm(self, *, force: bool = True, on_step: Callable[[str], None] = lambda s: None) -> list[str]:
        """Remove every machine of the cluster (workers first, then managers) and its context."""
        members = self.members()
        order = [m.machine for m in members if m.role != "manager"][::-1] + \
                [m.machine for m in members if m.role == "manager"][::-1]
        errors = []
        saved = os.environ.get("DOCKER_CONFIG")
        if self.docker_config:  # the contexts live where they were written
            os.environ["DOCKER_CONFIG"] = self.docker_config
        try:
            for m in order:
                try:
                    self.api.rm(m, force=force, on_step=on_step)
                except MachineError as e:
                    errors.append(f"{m}: {e.message}")
            self._remove_context()
        finally:
            if self.docker_config:
                if saved is None:
                    os.environ.pop("DOCKER_CONFIG", None)
                else:
                    os.environ["DOCKER_CONFIG"] = saved
        if errors:
            raise MachineError(f"cluster {self.name}: some machines were not removed ({'; '.join(errors)})",
                               f"retry: machine cluster rm {self.name}")
        return order

    # ---- context manager --------------------------------------------------------------
    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        if self.remove_on_exit:
            self.rm()

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, machines={self.machines})"

    # ---- listing -------------------------------------------------------------------------
    @staticmethod
    def names(api: "Machines") -> list[str]:
        """Every cluster with a member in the store."""
        out = set()
        for _, host in api.store.load_all():
            if not isinstance(host, MachineError) and host.machine.labels.get(CLUSTER_LABEL):
                out.add(host.machine.labels[CLUSTER_LABEL])
        return sorted(out)


def _swarm_engine(engine):
    from .model import EngineOptions

    engine = engine or EngineOptions()
    engine.live_restore = False  # dockerd refuses swarm mode with live-restore on
    return engine


def _context_exists(name: str) -> bool:
    from . import clientconfig

    return clientconfig.context_exists(name)

