"""The driver contract, option declarations and the lazy driver registry.

A driver makes and controls one host. It knows nothing of certificates, engines or
swarm: it gets a host up, says how to reach it over SSH, and records every cloud
resource it creates in the journal the moment it exists.

Drivers are found through the "machine.drivers" entry-point group and imported
only when used, so `machine env` never loads a cloud SDK.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

from .errors import MachineError, NotFound, UsageError
from .model import State

ENTRY_POINT_GROUP = "machine.drivers"


@dataclass(frozen=True)
class Option:
    """One driver option; the CLI turns it into `--<driver>-<name>`.

    `key` is the field name in config.json's "Driver" object (docker-machine's
    name where it had one). `secret` options never reach config.json: they go to
    the credential store so later `stop`/`rm` still work.
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    envvar: str | None = None
    key: str | None = None
    secret: bool = False
    multiple: bool = False
    choices: tuple = ()
    required: bool = False
    #: extra flag spellings kept for docker-machine compatibility (e.g. none's --url)
    aliases: tuple = ()

    def flag(self, driver_name: str) -> str:
        return f"--{driver_name}-{self.name}"

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def config_key(self) -> str:
        return self.key or "".join(p.capitalize() for p in self.name.split("-"))


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do, so callers never test driver names."""

    start: bool = True
    stop: bool = True
    restart: bool = True
    kill: bool = True
    ssh: bool = True
    provision: bool = True          # False for `none`: there is no host to log in to
    private_network: bool = False   # machines can share a network (swarm traffic)
    cloud: bool = False             # creates billable resources: rollback matters most


@dataclass(frozen=True)
class SSHEndpoint:
    host: str
    port: int
    user: str
    key_path: str | None = None


class Journal:
    """Resources a driver created, persisted the moment they exist.

    `persist` is called after every change (the API saves the record), so an
    interrupted create can be rolled back and `rm` can find everything.
    """

    def __init__(self, entries: list | None = None, persist: Callable[[], None] | None = None):
        self.entries: list[dict] = entries if entries is not None else []
        self._persist = persist or (lambda: None)

    def record(self, kind: str, id: str, **attrs) -> None:
        entry = {"kind": kind, "id": str(id), **attrs}
        self.entries.append(entry)
        self._persist()

    def forget(self, kind: str, id: str) -> None:
        self.entries[:] = [e for e in self.entries if not (e["kind"] == kind and e["id"] == str(id))]
        self._persist()

    def of_kind(self, kind: str) -> list[dict]:
        return [e for e in self.entries if e["kind"] == kind]

    def __iter__(self):
        return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


class Driver:
    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: docker-machine's default SSH user for this driver, used when config has none
    default_ssh_user: ClassVar[str] = "root"

    def __init__(self, machine_name: str, machine_dir: str | os.PathLike, config: dict,
                 journal: Journal | None = None, secrets: dict | None = None,
                 store_path: str | os.PathLike | None = None):
        self.machine_name = machine_name
        self.machine_dir = str(machine_dir)
        self.store_path = str(store_path) if store_path else os.path.dirname(os.path.dirname(self.machine_dir))
        # `config` is the record's "Driver" object: the driver reads and updates it.
        self.config = config
        self.journal = journal if journal is not None else Journal()  # an empty journal is falsy
        self.secrets = secrets or {}
        self.config.setdefault("MachineName", machine_name)

    # -- options ----------------------------------------------------------
    def set_options(self, values: dict[str, Any]) -> None:
        """Store parsed option values: plain ones in config, secret ones in self.secrets."""
        for opt in self.options:
            if opt.dest not in values:
                continue
            value = values[opt.dest]
            if opt.secret:
                if value:
                    self.secrets[opt.config_key] = value
            else:
                self.config[opt.config_key] = value

    def opt(self, name: str, default: Any = None) -> Any:
        """Read an option value (secret or not) by its option name."""
        for o in self.options:
            if o.name == name:
                src = self.secrets if o.secret else self.config
                value = src.get(o.config_key)
                return default if value is None else value
        raise KeyError(name)

    # -- the contract -----------------------------------------------------
    def pre_create_check(self) -> None:
        """Validate credentials, quotas, images; create nothing."""

    def create(self) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Delete everything the journal holds; missing resources are not an error."""
        raise NotImplementedError

    def start(self) -> None:
        raise MachineError(f"driver {self.name} cannot start machines")

    def stop(self) -> None:
        raise MachineError(f"driver {self.name} cannot stop machines")

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        raise MachineError(f"driver {self.name} cannot kill machines")

    def state(self) -> State:
        raise NotImplementedError

    def ip(self) -> str:
        return str(self.config.get("IPAddress") or "")

    def ssh_endpoint(self) -> SSHEndpoint:
        return SSHEndpoint(
            host=str(self.config.get("SSHHostAddress") or self.ip()),
            port=int(self.config.get("SSHPort") or 22),
            user=str(self.config.get("SSHUser") or self.default_ssh_user),
            key_path=self.config.get("SSHKeyPath") or None,
        )

    def default_engine_port(self) -> int | None:
        """The port dockerd should listen on when --engine-port is not given (None: 2376)."""
        return None

    def engine_endpoint(self, engine_port: int) -> tuple[str, int]:
        """Where the local docker CLI reaches the engine (a driver may forward it)."""
        return self.ip(), engine_port

    def addresses(self) -> list[str]:
        """Every address the host is reached by, for the server certificate's SANs."""
        ip = self.ip()
        return [ip] if ip else []

    def private_address(self) -> str | None:
        """Address other machines reach this one by (swarm advertise address)."""
        return self.config.get("PrivateIPAddress") or None


# ---- registry --------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _entry_points():
    from importlib.metadata import entry_points
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


# Built-in fallbacks so a source checkout without installed metadata still works.
BUILTIN = {
    "none": "machine.drivers.none:NoneDriver",
    "generic": "machine.drivers.generic:GenericDriver",
    "qemu": "machine.drivers.qemu:QemuDriver",
    "kvm": "machine.drivers.qemu:QemuDriver",
    "openstack": "machine.drivers.openstack:OpenStackDriver",
    "aws": "machine.drivers.aws:AWSDriver",
    "amazonec2": "machine.drivers.aws:AWSDriver",
    "virtualbox": "machine.drivers.virtualbox:VirtualBoxDriver",
    "vsphere": "machine.drivers.vsphere:VSphereDriver",
    "azure": "machine.drivers.azure:AzureDriver",
    "google": "machine.drivers.google:GoogleDriver",
}


def driver_names() -> list[str]:
    names = {ep.name for ep in _entry_points()}
    return sorted(names or BUILTIN)


def _target(name: str) -> str | None:
    for ep in _entry_points():
        if ep.name == name:
            return ep.value
    return BUILTIN.get(name)


def _importable(target: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(target.split(":")[0]) is not None
    except ModuleNotFoundError:
        return False


def get_driver_class(name: str) -> type[Driver]:
    import importlib

    target = _target(name)
    if not target or not _importable(target):
        known = ", ".join(n for n in driver_names() if _target(n) and _importable(_target(n)))
        raise UsageError(f"unknown driver {name!r}", f"choose one of: {known}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def make_driver(name: str, machine_name: str, machine_dir, config: dict, **kw) -> Driver:
    return get_driver_class(name)(machine_name, machine_dir, config, **kw)


def require(value, what: str, flag: str) -> Any:
    if value in (None, "", [], ()):
        raise UsageError(f"{what} is required", f"pass {flag}")
    return value


def not_found(kind: str, name: str, hint: str | None = None) -> NotFound:
    return NotFound(f"{kind} {name!r} not found", hint)


def iter_flags(driver_cls: type[Driver]) -> Iterable[tuple[str, Option]]:
    for opt in driver_cls.options:
        yield opt.flag(driver_cls.name), opt
