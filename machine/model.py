"""Typed machine records, serialised as docker-machine writes them.

docker-machine (ConfigVersion 3) is the reference format: config.json holds its fields
only, with absolute paths, so docker-machine reads and rewrites it without harm. Our
own data (journal, phase, engine options docker-machine lacks, …) goes to machine.json
beside it, a file docker-machine never touches: when docker-machine rewrites config.json
and drops what it does not know, nothing of ours is lost. Unknown keys are kept and
written back. A store that was moved is rebased on read (recorded store path ≠ actual).
"""
from __future__ import annotations

import enum
import os
from typing import Any

from .record import Record, field, fields
from .layout import DEFAULT_CERT_DAYS, DEFAULT_ENGINE_PORT, DEFAULT_INSTALL_URL, DEFAULT_TLS_KEY_TYPE

CONFIG_VERSION = 3


class State(str, enum.Enum):
    """Host states, spelled as docker-machine prints them."""

    NONE = ""
    RUNNING = "Running"
    PAUSED = "Paused"
    SAVED = "Saved"
    STOPPED = "Stopped"
    STOPPING = "Stopping"
    STARTING = "Starting"
    ERROR = "Error"
    TIMEOUT = "Timeout"

    def __str__(self) -> str:
        return self.value


class Phase(str, enum.Enum):
    """Where a machine is in its life, as recorded by us (not by the driver)."""

    CREATING = "creating"
    READY = "ready"
    FAILED = "failed"
    REMOVING = "removing"

    def __str__(self) -> str:
        return self.value


def _go_fields(cls, data: dict | None):
    """Build a record from a dict with Go field names; keep unknown keys in `extra`."""
    data = dict(data or {})
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "extra":
            continue
        key = f.metadata.get("go", f.name)
        if key in data:
            value = data.pop(key)
            if value is None and f.metadata.get("list"):
                value = []
            kwargs[f.name] = value
    kwargs["extra"] = data
    return cls(**kwargs)


def _to_go(obj, *, ours: bool = False) -> dict:
    """docker-machine's fields (and the kept unknown ones), or with ours=True only our additions."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        if f.name == "extra" or bool(f.metadata.get("ours")) != ours:
            continue
        out[f.metadata.get("go", f.name)] = getattr(obj, f.name)
    if not ours:
        out.update(obj.extra)
    return out


def go(name: str, *, is_list: bool = False, ours: bool = False):
    """A field's Go name; `ours` marks fields docker-machine lacks (kept in machine.json)."""
    return {"go": name, "list": is_list, "ours": ours}


class _GoRecord(Record):
    """(De)serialisation by the Go field names in each field's metadata."""

    @classmethod
    def from_dict(cls, d):
        return _go_fields(cls, d)

    def to_dict(self) -> dict:
        return _to_go(self)

    def own_dict(self) -> dict:
        """Our fields docker-machine lacks."""
        return _to_go(self, ours=True)


class EngineOptions(_GoRecord):
    arbitrary_flags: list = field(default_factory=list, metadata=go("ArbitraryFlags", is_list=True))
    dns: list | None = field(default=None, metadata=go("Dns"))
    graph_dir: str = field(default="", metadata=go("GraphDir"))
    env: list = field(default_factory=list, metadata=go("Env", is_list=True))
    ipv6: bool = field(default=False, metadata=go("Ipv6"))
    insecure_registry: list = field(default_factory=list, metadata=go("InsecureRegistry", is_list=True))
    labels: list = field(default_factory=list, metadata=go("Labels", is_list=True))
    log_level: str = field(default="", metadata=go("LogLevel"))
    storage_driver: str = field(default="", metadata=go("StorageDriver"))
    selinux_enabled: bool = field(default=False, metadata=go("SelinuxEnabled"))
    tls_verify: bool = field(default=True, metadata=go("TlsVerify"))
    registry_mirror: list = field(default_factory=list, metadata=go("RegistryMirror", is_list=True))
    install_url: str = field(default=DEFAULT_INSTALL_URL, metadata=go("InstallURL"))
    # Ours: docker-machine had no such fields.
    port: int = field(default=DEFAULT_ENGINE_PORT, metadata=go("Port", ours=True))
    # "": script, or bundle when one is given
    install: str = field(default="", metadata=go("InstallStrategy", ours=True))
    bundle: str = field(default="", metadata=go("BundlePath", ours=True))
    live_restore: bool = field(default=True, metadata=go("LiveRestore", ours=True))
    extra: dict = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        """How the engine gets installed: script, package, bundle or none."""
        return (self.install or ("bundle" if self.bundle else "script")).lower()


class SwarmOptions(_GoRecord):
    is_swarm: bool = field(default=False, metadata=go("IsSwarm"))
    address: str = field(default="", metadata=go("Address"))
    discovery: str = field(default="", metadata=go("Discovery"))
    agent: bool = field(default=False, metadata=go("Agent"))
    master: bool = field(default=False, metadata=go("Master"))
    host: str = field(default="tcp://0.0.0.0:3376", metadata=go("Host"))
    image: str = field(default="swarm:latest", metadata=go("Image"))
    strategy: str = field(default="spread", metadata=go("Strategy"))
    heartbeat: int = field(default=0, metadata=go("Heartbeat"))
    overcommit: float = field(default=0, metadata=go("Overcommit"))
    arbitrary_flags: list = field(default_factory=list, metadata=go("ArbitraryFlags", is_list=True))
    arbitrary_join_flags: list = field(default_factory=list, metadata=go("ArbitraryJoinFlags", is_list=True))
    env: list | None = field(default=None, metadata=go("Env"))
    is_experimental: bool = field(default=False, metadata=go("IsExperimental"))
    extra: dict = field(default_factory=dict)


# AuthOptions path fields: stored relative to the store when they lie inside it.
AUTH_PATH_FIELDS = (
    "cert_dir", "ca_cert_path", "ca_private_key_path", "server_cert_path",
    "server_key_path", "client_key_path", "client_cert_path", "store_path",
)


class AuthOptions(_GoRecord):
    cert_dir: str = field(default="", metadata=go("CertDir"))
    ca_cert_path: str = field(default="", metadata=go("CaCertPath"))
    ca_private_key_path: str = field(default="", metadata=go("CaPrivateKeyPath"))
    ca_cert_remote_path: str = field(default="", metadata=go("CaCertRemotePath"))
    server_cert_path: str = field(default="", metadata=go("ServerCertPath"))
    server_key_path: str = field(default="", metadata=go("ServerKeyPath"))
    client_key_path: str = field(default="", metadata=go("ClientKeyPath"))
    server_cert_remote_path: str = field(default="", metadata=go("ServerCertRemotePath"))
    server_key_remote_path: str = field(default="", metadata=go("ServerKeyRemotePath"))
    client_cert_path: str = field(default="", metadata=go("ClientCertPath"))
    server_cert_sans: list = field(default_factory=list, metadata=go("ServerCertSANs", is_list=True))
    store_path: str = field(default="", metadata=go("StorePath"))
    extra: dict = field(default_factory=dict)


class MachineMeta(_GoRecord):
    """Our own per-machine facts, under the "Machine" key."""

    phase: str = field(default=Phase.READY.value, metadata=go("Phase"))
    failed_step: str = field(default="", metadata=go("FailedStep"))
    error: str = field(default="", metadata=go("Error"))
    url: str = field(default="", metadata=go("URL"))
    created_at: str = field(default="", metadata=go("CreatedAt"))
    journal: list = field(default_factory=list, metadata=go("Journal", is_list=True))
    credentials: str = field(default="", metadata=go("Credentials"))  # "", "keyring" or "file"
    ssh_key_fingerprint: str = field(default="", metadata=go("HostKeyFingerprint"))
    tls_key_type: str = field(default=DEFAULT_TLS_KEY_TYPE, metadata=go("TLSKeyType"))
    cert_days: int = field(default=DEFAULT_CERT_DAYS, metadata=go("CertDays"))
    labels: dict = field(default_factory=dict, metadata=go("Labels"))
    steps: dict = field(default_factory=dict, metadata=go("StepTimes"))
    #: the driver's `local_state` capability, recorded so read-only verbs load no driver when it is False
    state_is_local: bool | None = field(default=None, metadata=go("StateIsLocal"))
    extra: dict = field(default_factory=dict)


def _base_driver_config(data: dict | None = None):
    # The record's Driver object, typed by the fields every driver shares; the API
    # re-reads it with the driver's own Config class when it needs the driver.
    from .driver import DriverConfig

    return DriverConfig.from_record(data)


class Host(Record):
    name: str
    driver_name: str
    driver: Any = field(default_factory=_base_driver_config)  # a DriverConfig
    engine: EngineOptions = field(default_factory=EngineOptions)
    swarm: SwarmOptions = field(default_factory=SwarmOptions)
    auth: AuthOptions = field(default_factory=AuthOptions)
    machine: MachineMeta = field(default_factory=MachineMeta)
    config_version: int = CONFIG_VERSION
    host_options_extra: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.driver, dict):  # a record's Driver object, as Python callers may give it
            self.driver = _base_driver_config(self.driver)

    # ---- serialisation -------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, store_path: str | os.PathLike | None = None, own: dict | None = None) -> "Host":
        """A record from config.json's content and machine.json's (`own`; older records kept it
        in config.json under "Machine"). Paths are rebased when the store was moved."""
        data = dict(data)
        if not isinstance(data.get("Name"), str) or not data.get("Name"):
            raise ValueError("record has no Name")
        own = dict(own if own is not None else {"Machine": data.get("Machine")})
        data.pop("Machine", None)
        if not isinstance(own.get("Machine") or {}, dict) or not isinstance(own.get("EngineOptions") or {}, dict):
            raise ValueError("machine.json is not an object of objects")
        hopts = dict(_object(data.pop("HostOptions", None), "HostOptions"))
        engine = dict(_object(hopts.pop("EngineOptions", None), "EngineOptions"))
        engine.update(own.get("EngineOptions") or {})
        host = cls(
            name=data.pop("Name"),
            driver_name=data.pop("DriverName", "") or "",
            driver=_base_driver_config(_object(data.pop("Driver", None), "Driver")),
            engine=EngineOptions.from_dict(engine),
            swarm=SwarmOptions.from_dict(_object(hopts.pop("SwarmOptions", None), "SwarmOptions")),
            auth=AuthOptions.from_dict(_object(hopts.pop("AuthOptions", None), "AuthOptions")),
            machine=MachineMeta.from_dict(own.get("Machine")),
            config_version=data.pop("ConfigVersion", CONFIG_VERSION),
            host_options_extra=hopts,
            extra=data,
        )
        if store_path is not None:
            host.resolve_paths(store_path)
        return host

    def to_dict(self) -> dict:
        """config.json's content: docker-machine's fields only, absolute paths."""
        hopts = {"Driver": "", "Memory": 0, "Disk": 0}
        hopts.update(self.host_options_extra)
        hopts["EngineOptions"] = self.engine.to_dict()
        hopts["SwarmOptions"] = self.swarm.to_dict()
        hopts["AuthOptions"] = self.auth.to_dict()
        out = {
            "ConfigVersion": self.config_version,
            "Driver": self.driver.to_record(),
            "DriverName": self.driver_name,
            "HostOptions": hopts,
            "Name": self.name,
        }
        out.update(self.extra)
        return out

    def own_dict(self) -> dict:
        """machine.json's content: what is ours alone."""
        return {"Machine": self.machine.to_dict(), "EngineOptions": self.engine.own_dict()}

    def inspect_dict(self) -> dict:
        """Both, as `machine inspect` shows them."""
        out = self.to_dict()
        out["HostOptions"]["EngineOptions"].update(self.engine.own_dict())
        out["Machine"] = self.machine.to_dict()
        return out

    def resolve_paths(self, store_path: str | os.PathLike) -> None:
        """Absolute paths for this store: relative ones (our older records) joined to it, and
        paths under the store the record was written in moved here when the store was moved."""
        store = os.path.abspath(store_path)
        old = self.driver.store_path or (os.path.dirname(self.auth.cert_dir) if self.auth.cert_dir else "")
        old = os.path.abspath(old) if old and os.path.isabs(old) else store

        def fix(value: str) -> str:
            if not value:
                return value
            if not os.path.isabs(value):
                return os.path.normpath(os.path.join(store, value))
            if old != store and (value == old or value.startswith(old.rstrip("/") + "/")):
                return store + value[len(old.rstrip("/")):] if value != old else store
            return value

        for name in AUTH_PATH_FIELDS:
            setattr(self.auth, name, fix(getattr(self.auth, name)))
        cfg = self.driver
        cfg.store_path = fix(cfg.store_path)
        cfg.ssh_key_path = fix(cfg.ssh_key_path)

    # ---- derived facts -------------------------------------------------
    @property
    def ip(self) -> str:
        return self.driver.ip_address or ""

    @property
    def url(self) -> str:
        if self.machine.url:
            return self.machine.url
        if self.ip:
            return engine_url(self.ip, self.engine.port)
        return ""


def _object(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"its {what} field is not an object")
    return value


def host_for_url(ip: str) -> str:
    """An address as it goes into a URL: IPv6 in brackets."""
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def engine_url(address: str, port: int) -> str:
    return f"tcp://{host_for_url(address)}:{port or DEFAULT_ENGINE_PORT}"
