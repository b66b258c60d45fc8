"""Typed machine records, serialised with docker-machine's config.json field names.

docker-machine (ConfigVersion 3) is the reference format: a store it wrote loads
here, and a record we write stays readable by its field names. Our own fields live
under the top-level key "Machine", which docker-machine's Go decoder ignores.
Unknown keys are kept and written back, so nothing of an old record is lost.
"""
from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass, field, fields
from typing import Any

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
    """Build a dataclass from a dict with Go field names; keep unknown keys in `extra`."""
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


def _to_go(obj) -> dict:
    out: dict[str, Any] = {}
    for f in fields(obj):
        if f.name == "extra":
            continue
        out[f.metadata.get("go", f.name)] = getattr(obj, f.name)
    out.update(obj.extra)
    return out


def go(name: str, *, is_list: bool = False):
    return {"go": name, "list": is_list}


class _GoRecord:
    """(De)serialisation by the Go field names in each field's metadata."""

    @classmethod
    def from_dict(cls, d):
        return _go_fields(cls, d)

    def to_dict(self) -> dict:
        return _to_go(self)


@dataclass
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
    port: int = field(default=DEFAULT_ENGINE_PORT, metadata=go("Port"))
    install: str = field(default="", metadata=go("InstallStrategy"))  # "": script, or bundle when one is given
    bundle: str = field(default="", metadata=go("BundlePath"))
    live_restore: bool = field(default=True, metadata=go("LiveRestore"))
    extra: dict = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        """How the engine gets installed: script, package, bundle or none."""
        return (self.install or ("bundle" if self.bundle else "script")).lower()


@dataclass
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


@dataclass
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


@dataclass
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
    extra: dict = field(default_factory=dict)


def _base_driver_config(data: dict | None = None):
    # The record's Driver object, typed by the fields every driver shares; the API
    # re-reads it with the driver's own Config class when it needs the driver.
    from .driver import DriverConfig

    return DriverConfig.from_record(data)


@dataclass
class Host:
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
    def from_dict(cls, data: dict, store_path: str | os.PathLike | None = None) -> "Host":
        data = dict(data)
        if not isinstance(data.get("Name"), str) or not data.get("Name"):
            raise ValueError("record has no Name")
        hopts = dict(data.pop("HostOptions", None) or {})
        host = cls(
            name=data.pop("Name"),
            driver_name=data.pop("DriverName", "") or "",
            driver=_base_driver_config(_driver_section(data.pop("Driver", None))),
            engine=EngineOptions.from_dict(hopts.pop("EngineOptions", None)),
            swarm=SwarmOptions.from_dict(hopts.pop("SwarmOptions", None)),
            auth=AuthOptions.from_dict(hopts.pop("AuthOptions", None)),
            machine=MachineMeta.from_dict(data.pop("Machine", None)),
            config_version=data.pop("ConfigVersion", CONFIG_VERSION),
            host_options_extra=hopts,
            extra=data,
        )
        if store_path is not None:
            host.resolve_paths(store_path)
        return host

    def to_dict(self, store_path: str | os.PathLike | None = None) -> dict:
        auth = self.auth.to_dict()
        cfg = self.driver
        if store_path is not None:
            auth = _relativise(auth, AuthOptions, store_path)
            cfg = dataclasses.replace(cfg, store_path=_rel(cfg.store_path, store_path),
                                      ssh_key_path=_rel(cfg.ssh_key_path, store_path))
        driver = cfg.to_record()
        hopts = {"Driver": "", "Memory": 0, "Disk": 0}
        hopts.update(self.host_options_extra)
        hopts["EngineOptions"] = self.engine.to_dict()
        hopts["SwarmOptions"] = self.swarm.to_dict()
        hopts["AuthOptions"] = auth
        out = {
            "ConfigVersion": self.config_version,
            "Driver": driver,
            "DriverName": self.driver_name,
            "HostOptions": hopts,
            "Name": self.name,
        }
        out.update(self.extra)
        out["Machine"] = self.machine.to_dict()
        return out

    def resolve_paths(self, store_path: str | os.PathLike) -> None:
        """Turn store-relative paths back into absolute ones after loading."""
        for name in AUTH_PATH_FIELDS:
            value = getattr(self.auth, name)
            if value and not os.path.isabs(value):
                setattr(self.auth, name, os.path.join(store_path, value))
        cfg = self.driver
        for name in ("store_path", "ssh_key_path"):
            value = getattr(cfg, name)
            if value and not os.path.isabs(value):
                setattr(cfg, name, os.path.join(store_path, value))

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


def _driver_section(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("its Driver field is not an object")
    return value


def host_for_url(ip: str) -> str:
    """An address as it goes into a URL: IPv6 in brackets."""
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def engine_url(address: str, port: int) -> str:
    return f"tcp://{host_for_url(address)}:{port or DEFAULT_ENGINE_PORT}"


def _rel(value: str, store_path) -> str:
    if not value or not os.path.isabs(value):
        return value
    store = os.path.abspath(store_path)
    try:
        if os.path.commonpath([store, os.path.abspath(value)]) == store:
            rel = os.path.relpath(value, store)
            return "." if rel == "." else rel
    except ValueError:
        pass
    return value


def _relativise(auth: dict, cls, store_path) -> dict:
    auth = dict(auth)
    for f in fields(cls):
        if f.name in AUTH_PATH_FIELDS:
            key = f.metadata["go"]
            auth[key] = _rel(auth.get(key, ""), store_path)
    return auth
