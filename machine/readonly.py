"""What the store alone answers: records, drivers, engine URLs, client flags, the active machine.

The full API (machine.api.Machines, a subclass) and the light start-up path (machine.fast)
both answer the read-only verbs — `env`, `config`, `url`, `ip`, `inspect`, `active` — through
this one class, so the two cannot drift apart. Every import here is paid by `machine env` in
a shell prompt: no click, no SDK, no cryptography at module level.

The light path overrides the four hooks (driver_class, load_secrets, peer_claims,
cert_expiry_from_pem) to give up, rather than pay for a heavy import, where a full answer
would need one.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Callable, Iterable

from . import layout
from .errors import MachineError, UsageError
from .layout import DEFAULT_ENGINE_PORT
from .store import CorruptRecord, Store, validate_name

if TYPE_CHECKING:  # the record classes: `active` and `ls -q` never load them
    from .model import Host, State

Reporter = Callable[[str], None]


class StoreReader:
    """The read-only half of the API, on a machine store."""

    def __init__(self, storage_path: str | os.PathLike | None = None):
        self.store = Store(storage_path)

    # ---- hooks (the light path answers these more cheaply, or not at all) ------
    def driver_class(self, driver_name: str):
        """The Driver class registered under `driver_name` (an entry point, or register_driver)."""
        from .driver import get_driver_class

        return get_driver_class(driver_name)

    def load_secrets(self, host: Host) -> dict:
        """The typed credentials kept beside the record (credentials.json or the OS keyring)."""
        from . import credentials

        return credentials.load(self.store.machine_dir(host.name), host.name, host.machine.credentials)

    def peer_claims(self, name: str) -> list:
        """What every other machine holds (ports, addresses), read from its record."""
        out = []
        for other, host in self.store.load_all():
            if other == name or isinstance(host, MachineError):
                continue
            try:
                cls = self.driver_class(host.driver_name)
                out.append(cls.Config.from_record(host.driver.to_record()).claims())
            except (MachineError, ValueError, TypeError):
                continue  # an unknown driver or a broken record claims nothing we can honour
        return out

    def cert_expiry_from_pem(self, path: str) -> str:
        """The expiry date (YYYY-MM-DD) of the certificate at `path`; "" when unreadable."""
        try:
            from .certs import cert_info

            return cert_info(path).not_after.date().isoformat()
        except Exception:
            return ""

    # ---- records and drivers ---------------------------------------------------
    def load(self, name: str) -> Host:
        validate_name(name)
        return self.store.load(name)

    def driver_for(self, host: Host, *, persist: bool = True, report: Reporter = lambda s: None):
        """The host's driver, with its typed config (the record's Driver object) and a context."""
        from .driver import Journal

        cls = self.driver_class(host.driver_name)
        if not isinstance(host.driver, cls.Config):
            try:
                host.driver = cls.Config.from_record(host.driver.to_record())
            except (ValueError, TypeError) as e:
                raise CorruptRecord(f"machine {host.name!r} has an unreadable Driver section ({e})",
                                    f"fix or remove {self.store.config_path(host.name)}") from None
            host.driver.apply_secrets(self.load_secrets(host))
        journal = Journal(host.machine.journal, (lambda: self.store.save(host)) if persist else None)
        return cls(host.driver, self._context(host.name, cls, journal, report))

    def _context(self, name: str, cls, journal, report: Reporter):
        from .driver import DriverContext

        return DriverContext(
            machine_name=name, machine_dir=self.store.machine_dir(name), cache_dir=self.store.cache_dir,
            shared_dir=self.store.driver_dir(cls.name), journal=journal,
            lock=self.store.named_lock, peer_claims=lambda: self.peer_claims(name), report=report)

    # ---- the engine's address ---------------------------------------------------
    def _url(self, host: Host) -> str:
        """The engine URL: what provisioning recorded, else what the driver says (a docker-machine
        record of a `none` machine keeps its URL in Driver.URL), else tcp://IP:PORT."""
        if host.machine.url:
            return host.machine.url
        try:
            driver = self.driver_for(host, persist=False)
        except MachineError:  # a driver this install lacks: the record's address still answers
            return host.url
        url = driver.engine_url(int(host.engine.port or DEFAULT_ENGINE_PORT))
        return "" if url.startswith(("tcp://:", "tcp://[]:")) else url  # no address yet

    def _ready_url(self, name: str) -> tuple[Host, str]:
        """A machine's record and URL for the verbs that point a client at its engine.

        Like docker-machine, they refuse when the host is not running — asked only of
        drivers that know their state without a network call (local_state).
        """
        from .model import Phase, State

        host = self.load(name)
        if host.machine.phase == Phase.CREATING.value:
            raise MachineError(f"machine {name} is still being created",
                               f"wait for its create to finish, or remove it: machine rm -f {name}")
        driver = None
        if host.machine.state_is_local is not False:  # unknown (docker-machine's records) or local: ask
            try:
                driver = self.driver_for(host, persist=False)
            except MachineError:
                driver = None
        if driver is not None and driver.capabilities.local_state:
            try:
                state = driver.state()
            except MachineError:  # cannot tell here (e.g. the hypervisor's tools are missing): answer anyway
                state = State.RUNNING
            if state != State.RUNNING:
                raise MachineError("Host is not running", f"{name} is {state or 'not running'}; "
                                   f"start it: machine start {name}")
        url = self._url(host)
        if not url:
            raise MachineError(f"machine {name} has no URL yet", f"is it running? machine start {name}")
        return host, url

    def url(self, name: str) -> str:
        return self._ready_url(name)[1]

    def ip(self, name: str) -> str:
        host = self.load(name)
        ip = host.ip or self.driver_for(host, persist=False).ip()
        if not ip:
            raise MachineError(f"machine {name} has no IP address yet", f"is it running? machine start {name}")
        return ip

    def status(self, name: str) -> State:
        host = self.load(name)
        return self.driver_for(host, persist=False).state()

    def inspect(self, name: str) -> dict:
        host = self.load(name)
        data = host.inspect_dict()
        data["Machine"]["CertExpiry"] = self._cert_expiry(host)
        return data

    def _cert_expiry(self, host: Host) -> str:
        """Server certificate expiry date (YYYY-MM-DD), read from the record or the PEM."""
        cached = host.machine.extra.get("ServerCertNotAfter")
        if cached:
            return str(cached)[:10]
        path = host.auth.server_cert_path
        if not path or not os.path.exists(path):
            return ""
        return self.cert_expiry_from_pem(path)

    # ---- client configuration ---------------------------------------------------
    def config_flags(self, name: str, *, check: bool = True, timeout: float = 20.0) -> str:
        """docker-machine's `config` output: flags for the docker CLI.

        Like docker-machine's, it first checks the engine answers a mutual-TLS handshake
        (GitLab Runner uses `config` as its liveness check); check=False answers from the record.
        """
        host, url = self._ready_url(name)
        a = host.auth
        if any(c.isspace() for c in url) or not url.startswith(("tcp://", "unix://", "ssh://")):
            # `docker $(machine config NAME)` splits on spaces: a URL with one would inject flags
            raise MachineError(f"machine {name} has an engine URL that cannot be passed safely ({url!r})",
                               f"fix its record or recreate it: machine rm -f {name}")
        if check:
            from .engineapi import check_tls

            ca, cert, key = self._client_tls(host)
            check_tls(url, ca=ca, cert=cert, key=key, timeout=timeout)
        return (f"--tlsverify\n--tlscacert={go_quote(a.ca_cert_path)}\n--tlscert={go_quote(a.client_cert_path)}"
                f"\n--tlskey={go_quote(a.client_key_path)}\n-H={url}\n")

    def _client_tls(self, host: Host) -> tuple[str, str, str]:
        """CA, client certificate and key a client presents to this machine's engine."""
        a, mdir = host.auth, self.store.machine_dir(host.name)
        return (a.ca_cert_path or str(mdir / layout.CA_CERT), a.client_cert_path or str(mdir / layout.CLIENT_CERT),
                a.client_key_path or str(mdir / layout.CLIENT_KEY))

    def env(self, name: str, *, shell: str, unset: bool = False, no_proxy: bool = False,
            command_line: Iterable[str] = (), environ=None, check: bool = False) -> str:
        from . import clientconfig

        environ = os.environ if environ is None else environ
        if unset:
            return clientconfig.render_env(shell=shell, machine_name=name, docker_host="", cert_path="",
                                           unset=True, no_proxy=no_proxy, environ=environ,
                                           command_line=list(command_line))
        host, url = self._ready_url(name)
        # docker-machine's DOCKER_CERT_PATH: the machine folder it recorded (AuthOptions.StorePath)
        cert_path = host.auth.store_path or str(self.store.machine_dir(name))
        if check:
            self.check_engine(host)
        return clientconfig.render_env(shell=shell, machine_name=name, docker_host=url, cert_path=cert_path,
                                       tls_verify=host.engine.tls_verify, no_proxy=no_proxy, environ=environ,
                                       command_line=list(command_line))

    def check_engine(self, host: Host, timeout: float = 10.0):
        """The engine's /info over mutual TLS, with the certificates the record names."""
        from .engineapi import engine_info

        ca, cert, key = self._client_tls(host)
        return engine_info(self._url(host), ca=ca, cert=cert, key=key, timeout=timeout)

    def active(self, environ=None) -> str | None:
        """The machine DOCKER_HOST points at, else the current docker context if it is a machine."""
        environ = os.environ if environ is None else environ
        docker_host = environ.get("DOCKER_HOST", "")
        if docker_host:
            for name, host in self.store.load_all():
                if not isinstance(host, MachineError) and self._url(host) == docker_host:
                    return name
            return None
        from . import clientconfig

        ctx = environ.get("DOCKER_CONTEXT") or clientconfig.current_context()
        for candidate in (ctx, (ctx or "").removeprefix("machine-")):
            if candidate and valid_name(candidate) and self.store.exists(candidate) \
                    and context_name(candidate) == ctx:
                return candidate
        return None


# ---- small shared rules --------------------------------------------------------

def valid_name(name: str) -> bool:
    try:
        validate_name(name)
        return True
    except UsageError:
        return False


def go_quote(s: str) -> str:
    # Go's %q for the paths we print: backslash and double quote escaped.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def context_name(machine_name: str) -> str:
    """The docker context for a machine: its own name where docker allows it.

    docker reserves "default" (docker-machine's favourite name) and wants two
    characters at least, so those get a "machine-" prefix.
    """
    if machine_name == "default" or len(machine_name) < 2 or not machine_name[0].isalnum():
        return f"machine-{machine_name}"
    return machine_name


def classic_swarm_label(host: Host) -> str:
    """The SWARM column for a docker-machine (classic swarm) record."""
    s = host.swarm
    if not s.is_swarm:
        return ""
    return s.extra.get("Role") or ("manager" if s.master else "worker")


# ---- ls filters ------------------------------------------------------------------

FILTER_KEYS = ("driver", "state", "name", "label", "swarm")


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTER_KEYS:
            raise UsageError(f"invalid filter {item!r}",
                             "use driver=NAME, state=Running, name=REGEX, label=KEY=VALUE or swarm=NAME")
        out.setdefault(key, []).append(value)
    return out


def name_match(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern == name


def row_matches(filters: dict, *, name: str, driver: str, labels: list, swarm: str) -> bool:
    """The filters that need no probing (all but state), for one row of `ls`."""
    if "driver" in filters and not any(driver.lower() == v.lower() for v in filters["driver"]):
        return False
    if "name" in filters and not any(name_match(v, name) for v in filters["name"]):
        return False
    if "label" in filters and not any(v in labels for v in filters["label"]):
        return False
    if "swarm" in filters and not any(v == swarm for v in filters["swarm"]):
        return False
    return True
