"""The driver contract: typed settings, a narrow context, capabilities, the registry.

A driver makes and controls one host. It knows nothing of certificates, engines or
swarm: it gets a host up, says how to reach it over SSH, and records every cloud
resource it creates in the journal the moment it exists.

Each driver declares its configuration as a class derived from `DriverConfig` (a
machine.record.Record: fields from annotations, as a dataclass, without its import cost);
every field says, through `setting(...)`, its config.json key (docker-machine's name
where it had one) and, for user-settable fields, its flag, env var, help and hidden
docker-machine alias. `create` validates user input into that class
(`Config.from_options`), the record's "Driver" object is written from it
(`to_record`), and keys a docker-machine store holds that we do not model survive
the round trip (`extra`).

Drivers are found through the "machine.drivers" entry-point group and imported only
when used, so `machine env` never loads a cloud SDK. Adding a driver is one folder
under drivers/ and one line in pyproject.toml (docs/drivers.md).
"""
from __future__ import annotations

import abc
import functools
import math
import os
import typing
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from .errors import MachineError, UsageError
from .model import State
from .record import MISSING, Record, field, fields

ENTRY_POINT_GROUP = "machine.drivers"
COMMANDS_ENTRY_POINT_GROUP = "machine.commands"

_SCALARS = (str, int, float, bool)


# --------------------------------------------------------------------------- settings

class Setting(Record, frozen=True):
    """One field of a driver's configuration, as the CLI, env and config.json see it."""

    field: str                  # the config class's field name
    key: str                    # its key in config.json's "Driver" object
    kind: type                  # str, int, float, bool, list or dict
    default: Any
    flag: str | None = None     # "memory" -> --<driver>-memory; None: not user-settable
    aliases: tuple = ()         # other accepted flags, hidden (docker-machine's spellings)
    envvar: str | None = None
    help: str = ""
    secret: bool = False        # never in config.json: kept in the keyring or a 0600 file
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    group: str = ""             # heading in `create -d X --help`

    def cli_flag(self, driver_name: str) -> str:
        return f"--{driver_name}-{self.flag}"


def setting(key: str, default: Any = None, *, flag: str | None = None, help: str = "",
            env: str | None = None, alias: str | tuple = (), secret: bool = False,
            choices: tuple = (), min: float | None = None, max: float | None = None,
            group: str = "") -> Any:
    """Declare a driver configuration field (used as the field's default in the Config class)."""
    meta = {"machine": dict(key=key, flag=flag, help=help, envvar=env,
                            aliases=(alias,) if isinstance(alias, str) else tuple(alias),
                            secret=secret, choices=tuple(choices), min=min, max=max, group=group)}
    # secrets stay out of repr(), so a config in a log or traceback shows none
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def _kind(tp) -> type:
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _kind(args[0]) if args else str
    if origin in (list, tuple) or tp in (list, tuple):
        return list
    if origin is dict or tp is dict:
        return dict
    return tp if tp in _SCALARS else str


def _coerce(s: Setting, value: Any, *, strict: bool, where: str) -> Any:
    """Convert `value` to the setting's kind; strict (user input) also checks ranges/choices."""
    def bad(why: str):
        if strict:
            return UsageError(f"invalid {where} {value!r}", why)
        return ValueError(f"{s.key}: {why} (got {type(value).__name__})")

    if value is None:
        return None
    k = s.kind
    if k is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            out = True
        elif isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
            out = False
        elif isinstance(value, int) and value in (0, 1):
            out = bool(value)
        else:
            raise bad("give true or false")
    elif k in (int, float):
        if isinstance(value, (bool, list, dict)):
            raise bad("give a number")
        try:
            if k is float:
                out = float(value)
            elif isinstance(value, int):
                out = value
            elif isinstance(value, float) and value.is_integer():
                out = int(value)
            else:
                out = int(str(value).strip(), 10)
        except (TypeError, ValueError):
            raise bad("give a whole number" if k is int else "give a number") from None
        if k is float and not math.isfinite(out):
            raise bad("give a finite number")
        if strict and ((s.min is not None and out < s.min) or (s.max is not None and out > s.max)):
            lo = "" if s.min is None else f"{s.min:g}"
            hi = "" if s.max is None else f"{s.max:g}"
            raise bad(f"must be between {lo} and {hi}" if lo and hi else
                      (f"must be at least {lo}" if lo else f"must be at most {hi}"))
    elif k is list:
        if isinstance(value, str):
            out = [p.strip() for p in value.split(",") if p.strip()] if strict else [value]
        elif isinstance(value, (list, tuple)):
            out = [str(v) if strict else v for v in value]
        else:
            raise bad("give a list")
    elif k is dict:
        if isinstance(value, dict):
            out = {str(a): b for a, b in value.items()}
        elif strict and isinstance(value, (list, tuple, str)):
            out = {}
            for item in ([value] if isinstance(value, str) else value):
                key, sep, val = str(item).partition("=")
                if not sep or not key.strip():
                    raise UsageError(f"invalid {where} {item!r}", "write KEY=VALUE")
                out[key.strip()] = val
        else:
            raise bad("give KEY=VALUE pairs")
    else:
        if isinstance(value, (list, dict)):
            raise bad("give a single value")
        out = str(value) if not isinstance(value, str) else value
        if strict and any(c in out for c in "\n\r\0"):
            raise bad("it may not contain a newline or NUL")
    if strict and s.choices:
        items = out if isinstance(out, list) else [out]
        for item in items:
            if item not in s.choices and not (item in ("", None) and s.default in ("", None)):
                raise UsageError(f"invalid {where} {item!r}", "choose one of: " + ", ".join(map(str, s.choices)))
    return out


class Claims(Record, frozen=True):
    """What a machine holds that its peers must not take (local ports, private addresses)."""

    ports: frozenset = frozenset()
    addresses: frozenset = frozenset()


class DriverConfig(Record):
    """Settings every driver shares (docker-machine's BaseDriver fields).

    Subclasses add their own fields with `setting(...)` and may redeclare these to
    give them a flag or another default.
    """

    machine_name: str = setting("MachineName", "")
    ip_address: str = setting("IPAddress", "")
    ssh_user: str = setting("SSHUser", "root")
    ssh_port: int = setting("SSHPort", 22)
    ssh_key_path: str = setting("SSHKeyPath", "")
    store_path: str = setting("StorePath", "")
    #: keys of the record's Driver object that no field models, kept as they were
    extra: dict = field(default_factory=dict, repr=False, compare=False)
    #: keys that were in the record (so writing it back adds nothing the user did not change)
    _present: frozenset = field(default=frozenset(), repr=False, compare=False)

    # ---- the declared settings ------------------------------------------------------
    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        return _settings(cls)

    @classmethod
    def options(cls) -> tuple[Setting, ...]:
        """The user-settable settings (those with a flag)."""
        return tuple(s for s in cls.settings() if s.flag)

    # ---- from and to config.json ----------------------------------------------------
    @classmethod
    def from_record(cls, data: Mapping | None) -> "DriverConfig":
        """Read a record's Driver object; unknown keys kept; ValueError on wrong types."""
        data = dict(data or {})
        kwargs: dict[str, Any] = {}
        present = set()
        for s in cls.settings():
            if s.key in data:
                raw = data.pop(s.key)
                present.add(s.key)
                kwargs[s.field] = s.default if raw is None and s.kind in (list, dict) else \
                    _coerce(s, raw, strict=False, where=s.key)
        return cls(**kwargs, extra=data, _present=frozenset(present))

    def to_record(self) -> dict:
        """The record's Driver object: modelled fields (secrets never), then the kept extras."""
        out: dict[str, Any] = {}
        for s in self.settings():
            if s.secret and s.key not in self._present:
                # never written by us; a secret docker-machine itself put in its record is left there
                # (removing it would break docker-machine's own rm on a shared store)
                continue
            value = getattr(self, s.field)
            if s.key in self._present or value != s.default:
                out[s.key] = list(value) if isinstance(value, tuple) else value
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    # ---- from user input ---------------------------------------------------------------
    @classmethod
    def from_options(cls, values: Mapping[str, Any], *, driver_name: str, machine_name: str = "",
                     environ: Mapping[str, str] | None = None) -> "DriverConfig":
        """Validate user input (keyed by field or flag name) into a config.

        Values not given are read from each setting's env var, else its default.
        Unknown names, wrong types, out-of-range numbers and bad choices are
        UsageErrors naming the flag.
        """
        environ = os.environ if environ is None else environ
        by_name: dict[str, Setting] = {}
        for s in cls.options():
            by_name[s.field] = by_name[s.flag] = by_name[s.flag.replace("-", "_")] = s
        given: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue  # not given
            s = by_name.get(name)
            if s is None:
                raise UsageError(f"driver {driver_name} has no option {name!r}",
                                 f"see: machine create -d {driver_name} --help")
            given[s.field] = (s, value)
        kwargs: dict[str, Any] = {"machine_name": machine_name} if machine_name else {}
        for s in cls.options():
            if s.field in given:
                value, where = given[s.field][1], s.cli_flag(driver_name)
            elif s.envvar and environ.get(s.envvar) not in (None, ""):
                value, where = environ[s.envvar], f"{s.envvar} (for {s.cli_flag(driver_name)})"
            else:
                continue
            if isinstance(value, tuple) and s.kind is not list:
                value = list(value) if s.kind is dict else (value[-1] if value else None)
            if s.kind is list and isinstance(value, (list, tuple)):
                # repeatable flags may also carry comma-separated lists (docker-machine's style)
                value = [p.strip() for v in value for p in str(v).split(",") if p.strip()]
            kwargs[s.field] = _coerce(s, value, strict=True, where=where)
        cfg = cls(**kwargs)
        cfg.validate(driver_name)
        return cfg

    def validate(self, driver_name: str) -> None:
        """Cross-field checks on user input; raise UsageError naming the flags."""

    # ---- secrets -------------------------------------------------------------------------
    def secrets(self) -> dict[str, str]:
        """Secret values given, by config key (for the credential store)."""
        return {s.key: getattr(self, s.field) for s in self.settings()
                if s.secret and getattr(self, s.field)}

    def apply_secrets(self, values: Mapping[str, Any]) -> None:
        for s in self.settings():
            if s.secret and values.get(s.key):
                setattr(self, s.field, values[s.key])

    # ---- peers -----------------------------------------------------------------------------
    def claims(self) -> Claims:
        """Local ports and private addresses this machine holds (peers must not take them)."""
        return Claims()


@functools.lru_cache(maxsize=None)
def _settings(cls) -> tuple[Setting, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        meta = f.metadata.get("machine")
        if meta is None:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        out.append(Setting(field=f.name, kind=_kind(hints[f.name]), default=default, **meta))
    return tuple(out)


# --------------------------------------------------------------------------- capabilities, endpoint

class Capabilities(Record, frozen=True):
    """What a driver can do, so callers never test driver names."""

    start: bool = True
    stop: bool = True
    restart: bool = True
    kill: bool = True
    ssh: bool = True                # `machine ssh/scp` can log in
    provision: bool = True          # False for `none`: there is no host to log in to
    private_network: bool = False   # machines can share a network (swarm traffic)
    local_state: bool = False       # state() asks nothing over the network (fast `status`)
    #: creates billable cloud resources: a failed create's rollback is reported resource by resource
    cloud: bool = False


class SSHEndpoint(Record, frozen=True):
    host: str
    port: int
    user: str
    key_path: str | None = None


class Journal:
    """Resources a driver created, persisted the moment they exist.

    `persist` is called after every change (the core saves the record), so an
    interrupted create can be rolled back and `rm` can find everything.
    """

    def __init__(self, entries: list | None = None, persist: Callable[[], None] | None = None):
        self.entries: list[dict] = entries if entries is not None else []
        self._persist = persist or (lambda: None)

    def record(self, kind: str, id: str, **attrs) -> None:
        """Add a resource (kind, id, attributes) and save the record at once."""
        entry = {"kind": kind, "id": str(id), **attrs}
        self.entries.append(entry)
        self._persist()

    def forget(self, kind: str, id: str) -> None:
        """Drop a resource that no longer exists and save the record at once."""
        self.entries[:] = [e for e in self.entries if not (e["kind"] == kind and e["id"] == str(id))]
        self._persist()

    def of_kind(self, kind: str) -> list[dict]:
        return [e for e in self.entries if e["kind"] == kind]

    def __iter__(self):
        return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


def remove_journaled(entries: list[dict], *, order: typing.Sequence[str], remove_entry: Callable[[dict], None],
                     translate: Callable[[Exception, str], MachineError], error_class: type[MachineError],
                     fatal: tuple[type, ...] = (), describe: Callable[[dict], str] | None = None,
                     log=None) -> None:
    """Delete what a journal recorded, kinds in `order` (what depends on others before what it
    depends on; kinds not named go last), newest first within a kind.

    One stuck resource must not strand the rest: a failure is kept and the next entry tried,
    and at the end one `error_class` error says how many failed and the first reason. An
    error of a `fatal` type (bad credentials: every other call would fail the same way) is
    raised at once. `translate(exc, action)` words a failure; the action is "delete KIND ID"
    (`describe(entry)` gives a friendlier ID)."""
    rank = {kind: i for i, kind in enumerate(order)}
    errors: list[MachineError] = []
    for entry in sorted(reversed(entries), key=lambda e: rank.get(e["kind"], len(rank))):
        try:
            remove_entry(entry)
        except Exception as exc:
            what = describe(entry) if describe else entry["id"]
            err = translate(exc, f"delete {entry['kind'].replace('_', ' ')} {what}")
            if isinstance(err, fatal):
                raise err from exc
            errors.append(err)
            if log is not None:
                log.warning("%s", err)
    if errors:
        failed = error_class(f"{len(errors)} resource(s) could not be deleted; first: {errors[0].message}",
                             "run rm again: the journal keeps what is left")
        if getattr(errors[0], "code", "") and hasattr(failed, "code"):
            failed.code = errors[0].code  # e.g. AWS's error code of the first failure
        raise failed


class DriverContext(Record, frozen=True):
    """All a driver gets from the core: nothing else of the store is its business."""

    machine_name: str
    machine_dir: Path                 # the machine's own folder (exists before create)
    cache_dir: Path                   # shared downloads and images, by content hash
    shared_dir: Path                  # this driver's own folder for state shared by its machines
    journal: Journal
    lock: Callable[[str], AbstractContextManager]     # a named lock across every machine command
    peer_claims: Callable[[], list[Claims]]           # what the other machines hold
    report: Callable[[str], None] = lambda msg: None  # progress of long operations, one line each

    @classmethod
    def scratch(cls, machine_name: str, machine_dir: str | os.PathLike, *, root: str | os.PathLike | None = None):
        """A context outside any store (tools and tests): locks are file locks under `root`."""
        from filelock import FileLock

        root_path = Path(root) if root else Path(machine_dir).parent
        root_path.mkdir(parents=True, exist_ok=True)
        return cls(machine_name=machine_name, machine_dir=Path(machine_dir), cache_dir=root_path / "cache",
                   shared_dir=root_path / "shared", journal=Journal(),
                   lock=lambda name: FileLock(str(root_path / f".{name}.lock")),
                   peer_claims=lambda: [])


# --------------------------------------------------------------------------- the driver

class Driver(abc.ABC):
    """One host on one platform. Subclasses set the class attributes and the abstract methods."""

    name: ClassVar[str] = ""
    #: one line shown by `machine create -d NAME --help`
    description: ClassVar[str] = ""
    Config: ClassVar[type[DriverConfig]] = DriverConfig
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: DriverConfig, ctx: DriverContext):
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.ctx = ctx

    @property
    def machine_name(self) -> str:
        return self.ctx.machine_name

    @property
    def machine_dir(self) -> Path:
        return self.ctx.machine_dir

    @property
    def journal(self) -> Journal:
        return self.ctx.journal

    # ---- the contract ------------------------------------------------------------------
    @abc.abstractmethod
    def pre_create_check(self) -> None:
        """Check credentials, quotas, images and local tools; create nothing."""

    @abc.abstractmethod
    def create(self) -> None:
        """Make the host and leave it running; journal each resource the moment it exists."""

    @abc.abstractmethod
    def remove(self) -> None:
        """Delete everything the journal holds; missing resources are not an error."""

    @abc.abstractmethod
    def state(self) -> State:
        """The host's power state as the platform reports it."""

    def stopped_reason(self) -> str | None:
        """Why the host cannot answer now (its VM exited, the platform stopped it), or None
        when it may still come up. Asked now and then while waiting for SSH, so that a dead
        host fails at once instead of at the deadline; unreachable is not stopped (an sshd
        still starting). Default: None (this driver cannot tell cheaply)."""
        return None

    def start(self) -> None:
        """Power the host on (a no-op when it runs)."""
        raise MachineError(f"driver {self.name} cannot start machines")

    def stop(self) -> None:
        """Shut the host down gracefully."""
        raise MachineError(f"driver {self.name} cannot stop machines")

    def restart(self) -> None:
        """Stop, then start."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """Power the host off at once."""
        raise MachineError(f"driver {self.name} cannot kill machines")

    def ip(self) -> str:
        """The address clients use for the host (may be empty before create)."""
        return self.config.ip_address

    def ssh_endpoint(self) -> SSHEndpoint:
        """Host, port, user and private key for SSH."""
        return SSHEndpoint(host=self.ip(), port=int(self.config.ssh_port or 22),
                           user=self.config.ssh_user or "root", key_path=self.config.ssh_key_path or None)

    def default_engine_port(self) -> int | None:
        """The port dockerd listens on when --engine-port is not given (None: the default)."""
        return None

    def engine_endpoint(self, engine_port: int) -> tuple[str, int]:
        """Where the local docker CLI reaches the engine (a driver may forward it)."""
        return self.ip(), engine_port

    def engine_url(self, engine_port: int) -> str:
        """The engine's URL for clients (tcp://HOST:PORT unless the driver knows better)."""
        from .model import engine_url

        return engine_url(*self.engine_endpoint(engine_port))

    def addresses(self) -> list[str]:
        """Every address the host is reached by, for the server certificate's SANs."""
        ip = self.ip()
        return [ip] if ip else []

    def private_address(self) -> str | None:
        """The address other machines reach this one by (swarm), if it has one."""
        return None

    @classmethod
    def batch_states(cls, drivers: list["Driver"]) -> dict[str, State] | None:
        """States of many machines of this driver in few API calls (`ls`), by machine name; None: ask each."""
        return None


# --------------------------------------------------------------------------- registry

#: drivers registered at run time by Python callers (a test's fake, a driver built in a notebook)
_registered: dict[str, type] = {}


def register_driver(name: str, cls: type["Driver"] | None) -> None:
    """Make `cls` available as driver `name` in this process (None removes it).

    Installed drivers register through the "machine.drivers" entry point instead.
    """
    if cls is None:
        _registered.pop(name, None)
    elif not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"{cls!r} is not a Driver subclass")
    else:
        _registered[name] = cls


@functools.lru_cache(maxsize=None)
def _entry_points(group: str = ENTRY_POINT_GROUP):
    from importlib.metadata import entry_points

    return tuple(entry_points(group=group))


def driver_names() -> list[str]:
    """Every registered driver name and alias whose module is installed."""
    return sorted({ep.name for ep in _entry_points() if _importable(ep.value)} | set(_registered))


def _importable(target: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(target.split(":")[0]) is not None
    except (ModuleNotFoundError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _own_entry_points(group: str = ENTRY_POINT_GROUP):
    """Our own distribution's entry points: found without scanning every installed package."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        return tuple(ep for ep in distribution("machine").entry_points if ep.group == group)
    except PackageNotFoundError:
        return ()


def get_driver_class(name: str) -> type[Driver]:
    """The driver class registered under `name` (or an alias), imported now."""
    if name in _registered:
        return _registered[name]
    for ep in _own_entry_points() + _entry_points():
        if ep.name == name and _importable(ep.value):
            try:
                cls = ep.load()
            except (ImportError, AttributeError) as e:
                raise MachineError(f"driver {name} is installed but cannot be loaded ({e})",
                                   f"reinstall the package that provides it ({ep.value})") from None
            if not (isinstance(cls, type) and issubclass(cls, Driver)):
                raise MachineError(f"entry point {ep.name} = {ep.value} is not a Driver")
            return cls
    raise UsageError(f"unknown driver {name!r}", f"choose one of: {', '.join(driver_names())}")


def driver_commands() -> dict[str, str]:
    """Sub-commands contributed by drivers: verb -> "module:attribute"."""
    return {ep.name: ep.value for ep in _entry_points(COMMANDS_ENTRY_POINT_GROUP)}
