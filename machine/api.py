"""The facade: everything the CLI (and Python callers) can do with machines.

    from machine.api import Machines
    m = Machines()                     # $MACHINE_STORAGE_PATH or ~/.docker/machine
    m.create("node1", "qemu", {"memory": 1024})
    print(m.env("node1", shell="bash"))
    m.rm(["node1"])

Heavy modules (paramiko, cryptography, SDKs) are imported inside the functions
that need them, so `env`, `ls`, `config` stay fast.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import credentials, layout, validate
from .driver import Driver, Journal, get_driver_class
from .errors import MachineError, StepFailed, UsageError, machine_exists, no_such_machine
from .fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write
from .layout import DEFAULT_ENGINE_PORT
from .model import EngineOptions, Host, MachineMeta, Phase, State, SwarmOptions
from .readonly import (StoreReader, classic_swarm_label, context_name, parse_filters,  # noqa: F401 (re-exported)
                       row_matches)
from .store import validate_name
from .validate import TLSOptions

Reporter = Callable[[str], None]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class HostStatus:
    """One row of `ls`."""

    name: str
    driver: str = ""
    state: str = ""
    url: str = ""
    active: bool = False
    docker_version: str = ""
    swarm: str = ""
    error: str = ""
    cert_expiry: str = ""
    labels: list = field(default_factory=list)
    response_ms: int = 0
    #: ports the driver forwards from the host to the machine now ("127.0.0.1:HOST->GUEST/tcp"; qemu's agent)
    ports: list = field(default_factory=list)
    engine_options: dict = field(default_factory=lambda: EngineOptions().to_dict())
    swarm_options: dict = field(default_factory=lambda: SwarmOptions().to_dict())

    def as_template_data(self) -> dict:
        return {
            "EngineOptions": self.engine_options, "SwarmOptions": self.swarm_options,
            "Name": self.name, "DriverName": self.driver, "State": self.state, "URL": self.url,
            "Active": "*" if self.active else "-", "ActiveHost": self.active,
            "DockerVersion": self.docker_version, "Swarm": self.swarm, "Error": self.error,
            "CertExpiry": self.cert_expiry, "ResponseTime": f"{self.response_ms}ms",
            "EngineLabels": self.labels, "Ports": ", ".join(self.ports),
        }


class Machines(StoreReader):
    """Everything the CLI does, for Python callers too; the read-only verbs are StoreReader's."""

    @property
    def cache_dir(self) -> Path:
        """Downloads and images shared by every machine, by content hash."""
        return self.store.cache_dir

    def fetch_file(self, name: str, remote_path: str, local_path: str | os.PathLike) -> None:
        """Copy one file from machine `name` over SSH (pinned host key) to `local_path`."""
        from .transfer import machine_connection

        conn = machine_connection(self, name)
        try:
            conn.get(remote_path, str(local_path))
        finally:
            conn.close()

    # ---- create -----------------------------------------------------------
    def create(self, name: str, driver_name: str, driver_options: dict | None = None, *,
               engine: EngineOptions | None = None, swarm: SwarmOptions | None = None,
               tls: TLSOptions | None = None, keep_on_failure: bool = False,
               labels: dict | None = None, on_step: Reporter = lambda s: None,
               ssh_deadline_s: float = 600.0, context: bool = True, swarm_mode=None) -> Host:
        """pre-check → record → driver.create (journaled) → provision → client config → ready."""
        validate_name(name)
        cls = get_driver_class(driver_name)
        engine = validate.engine_options(engine or EngineOptions())
        tls = validate.tls_options(tls or TLSOptions())
        ssh_deadline_s = validate.seconds("--ssh-timeout", ssh_deadline_s, low=1)
        if self.store.exists(name):
            raise machine_exists(name)
        config = cls.Config.from_options(dict(driver_options or {}), driver_name=cls.name, machine_name=name)
        host = Host(name=name, driver_name=cls.name, driver=config, engine=engine,
                    swarm=swarm or SwarmOptions(), machine=MachineMeta(phase=Phase.CREATING.value))
        host.machine.created_at = _now()
        host.machine.state_is_local = cls.capabilities.local_state
        host.machine.tls_key_type = tls.key_type
        host.machine.cert_days = tls.cert_days
        host.machine.labels = dict(labels or {})
        host.auth.server_cert_sans = list(tls.sans)
        mdir = self.store.machine_dir(name)
        journal = Journal(host.machine.journal, lambda: self.store.save(host))
        driver = cls(config, self._context(name, cls, journal, on_step))
        if not host.engine.port:
            # dockerd listens where clients reach it unless told otherwise (--engine-port)
            host.engine.port = driver.default_engine_port() or DEFAULT_ENGINE_PORT

        if swarm_mode is not None:  # a machine.swarm.SwarmRequest: checked before anything exists
            swarm_mode.check(self, name)
            host.engine.live_restore = False  # dockerd refuses swarm mode with live-restore on
        step = "pre-create-check"
        on_step(step)
        if context:
            from . import clientconfig

            # a docker context of that name the user made is never overwritten: refuse before anything exists
            clientconfig.check_context_free(context_name(name), store_path=self.store.path)
        driver.pre_create_check()
        self._prepare_certs(tls)  # after the driver's check: a refused create makes no CA either

        # From here on something exists: any failure rolls back unless asked not to.
        self.store.reserve(name)
        try:
            with self.store.lock(name):
                self._fill_auth(host, tls)
                host.machine.credentials = credentials.save(mdir, name, config.secrets())
                if host.machine.credentials:
                    on_step(f"credentials kept in the {'OS keyring' if host.machine.credentials == 'keyring' else 'machine folder (0600 credentials.json)'}")
                self.store.save(host)
                step = "create-host"
                on_step(step)
                self._timed(host, step, driver.create)
                self.store.save(host)
                step = "provision"
                self._provision(host, driver, on_step=on_step, pin=True, ssh_deadline_s=ssh_deadline_s)
                if swarm_mode is not None:
                    step = "swarm"
                    on_step(step)
                    self._timed(host, step, swarm_mode.apply, self, host, driver, on_step)
                step = "client-config"
                on_step(step)
                self._client_config(host, context=context)
                host.machine.phase = Phase.READY.value
                host.machine.failed_step = host.machine.error = ""
                self.store.save(host)
                return host
        except BaseException as exc:
            failed_step = exc.step if isinstance(exc, StepFailed) else step
            if keep_on_failure and not isinstance(exc, KeyboardInterrupt):
                host.machine.phase = Phase.FAILED.value
                host.machine.failed_step = failed_step
                host.machine.error = str(exc)
                self.store.save(host)
                raise _with_hint(exc, failed_step,
                                 f"the machine was kept; fix the cause and run: machine provision {name}, "
                                 f"or remove it: machine rm -f {name}") from exc
            on_step(f"rolling back ({failed_step} failed)")
            self._rollback(host, driver, on_step)
            raise _with_hint(exc, failed_step, "nothing was left behind; fix the cause and create again") from exc

    def _timed(self, host: Host, step: str, fn, *a, **kw):
        t0 = time.monotonic()
        try:
            return fn(*a, **kw)
        finally:
            host.machine.steps[step] = round(time.monotonic() - t0, 3)

    def _rollback(self, host: Host, driver: Driver, on_step: Reporter = lambda s: None) -> None:
        if driver.capabilities.cloud:  # billable resources: say what goes, so nobody wonders
            for entry in list(driver.journal):
                on_step(f"deleting {entry['kind']} {entry['id']}")
        try:
            driver.remove()
        except BaseException as e:  # keep the record so `rm` can finish the job
            host.machine.phase = Phase.FAILED.value
            host.machine.error = f"rollback incomplete: {e}"
            self.store.save(host)
            raise MachineError(f"rollback of {host.name} failed ({e})",
                               f"resources may remain; run: machine rm -f {host.name}") from None
        self._remove_local(host)

    def _prepare_certs(self, tls: TLSOptions) -> None:
        if tls.ca_cert or tls.ca_key:
            from . import certs

            certs.validate_byo(tls.ca_cert, tls.ca_key, tls.client_cert, tls.client_key)
            if not (tls.client_cert and tls.client_key):
                # A client cert signed by the user's CA, kept in the store's certs/.
                client = self.store.client_cert()
                if not client.exists():
                    with self.store.store_lock():
                        certs.generate_client_cert(tls.ca_cert, tls.ca_key, client, self.store.client_key(),
                                                   key_type=tls.key_type)
        else:
            self.store.ensure_certs(key_type=tls.key_type)

    def _fill_auth(self, host: Host, tls: TLSOptions) -> None:
        mdir = self.store.machine_dir(host.name)
        a = host.auth
        a.cert_dir = str(self.store.certs_dir)
        a.ca_cert_path = tls.ca_cert or str(self.store.ca_cert())
        a.ca_private_key_path = tls.ca_key or str(self.store.ca_key())
        a.client_cert_path = tls.client_cert or str(self.store.client_cert())
        a.client_key_path = tls.client_key or str(self.store.client_key())
        a.server_cert_path = str(mdir / layout.SERVER_CERT)
        a.server_key_path = str(mdir / layout.SERVER_KEY)
        a.store_path = str(mdir)
        host.driver.store_path = host.driver.store_path or str(self.store.path)

    # ---- provisioning ------------------------------------------------------
    def _provision(self, host: Host, driver: Driver, *, on_step: Reporter, pin: bool,
                   ssh_deadline_s: float = 600.0, regenerate_certs: bool = False, upgrade: bool = False):
        if not driver.capabilities.provision:
            host.machine.url = driver.engine_url(int(host.engine.port or DEFAULT_ENGINE_PORT))
            return None
        from .certs import cert_info
        from .provision import provision_host

        try:
            result = provision_host(self.store, host, driver, on_step=on_step, pin_host_key=pin,
                                    ssh_deadline_s=ssh_deadline_s, regenerate_certs=regenerate_certs,
                                    upgrade=upgrade)
        finally:
            self.store.save(host)  # the pinned host key survives a failed step
        host.machine.steps.update(result.step_times)
        host.machine.extra["EngineVersion"] = result.engine_version
        host.machine.extra["RoundTrips"] = result.round_trips
        host.machine.extra["LastChanges"] = list(result.changed)
        host.machine.url = driver.engine_url(int(host.engine.port or DEFAULT_ENGINE_PORT))
        # Cached so `ls` shows certificate expiry without loading cryptography.
        host.machine.extra["ServerCertNotAfter"] = cert_info(host.auth.server_cert_path).not_after.isoformat()
        return result

    def _client_config(self, host: Host, *, context: bool = True) -> None:
        """Copy CA and client cert into the machine folder (docker-machine's DOCKER_CERT_PATH)
        and write a docker context named after the machine."""
        mdir = self.store.machine_dir(host.name)
        a = host.auth
        for src, dst, mode in ((a.ca_cert_path, layout.CA_CERT, PUBLIC_FILE),
                               (a.client_cert_path, layout.CLIENT_CERT, PUBLIC_FILE),
                               (a.client_key_path, layout.CLIENT_KEY, PRIVATE_FILE)):
            atomic_write(mdir / dst, Path(src).read_bytes(), mode=mode)
        if context and host.machine.url:
            from . import clientconfig

            clientconfig.write_context(
                context_name(host.name), docker_host=host.machine.url,
                ca_pem=(mdir / layout.CA_CERT).read_bytes(), cert_pem=(mdir / layout.CLIENT_CERT).read_bytes(),
                key_pem=(mdir / layout.CLIENT_KEY).read_bytes(),
                description=f"machine {host.name} ({host.driver_name})", store_path=self.store.path)

    def create_many(self, names, driver_name: str, driver_options: dict | None = None, **kw):
        """Create machines in parallel (machine/batch.py: CA once, failures rolled back, a BatchResult)."""
        from .batch import create_many

        return create_many(self, names, driver_name, driver_options, **kw)

    def provision(self, name: str, *, on_step: Reporter = lambda s: None, regenerate_certs: bool = False,
                  ssh_deadline_s: float = 300.0, upgrade: bool = False):
        """Bring the host to what its record asks for; returns the ProvisionResult (its plan, what changed)."""
        host = self.load(name)
        with self.store.lock(name):
            driver = self.driver_for(host, report=on_step)
            if not driver.capabilities.provision:
                raise UsageError(f"machine {name} uses driver {host.driver_name}, which has no host to provision")
            if driver.capabilities.local_state and driver.capabilities.start and driver.state() != State.RUNNING:
                on_step(f"starting {name} first")  # docker-machine starts a stopped host before provisioning
                driver.start()
                self.store.save(host)
            try:
                result = self._provision(host, driver, on_step=on_step, pin=not host.machine.ssh_key_fingerprint,
                                         ssh_deadline_s=ssh_deadline_s, regenerate_certs=regenerate_certs,
                                         upgrade=upgrade)
                self._client_config(host)
            except BaseException as exc:
                host.machine.phase = Phase.FAILED.value
                host.machine.failed_step = exc.step if isinstance(exc, StepFailed) else "provision"
                host.machine.error = str(exc)
                self.store.save(host)
                raise
            host.machine.phase = Phase.READY.value
            host.machine.failed_step = host.machine.error = ""
            self.store.save(host)
            return result

    def regenerate_certs(self, name: str, *, client_certs: bool = False, on_step: Reporter = lambda s: None):
        if client_certs:
            from . import certs

            with self.store.store_lock():
                a = self.load(name).auth
                certs.generate_client_cert(a.ca_cert_path, a.ca_private_key_path, a.client_cert_path,
                                           a.client_key_path, key_type=self.load(name).machine.tls_key_type)
        return self.provision(name, on_step=on_step, regenerate_certs=True)

    def upgrade(self, name: str, *, on_step: Reporter = lambda s: None):
        """Re-run the install strategy even though an engine is present (newest it offers)."""
        return self.provision(name, on_step=on_step, upgrade=True)

    # ---- lifecycle ---------------------------------------------------------
    def _lifecycle(self, name: str, action: str, *, on_step: Reporter = lambda s: None) -> Host:
        host = self.load(name)
        with self.store.lock(name):
            driver = self.driver_for(host, report=on_step)
            if not getattr(driver.capabilities, action):
                raise UsageError(f"driver {host.driver_name} cannot {action} machines")
            on_step(f"{action} {name}")
            getattr(driver, action)()
            self.store.save(host)  # a driver may update ports or addresses
        if action in ("start", "restart") and driver.capabilities.provision:
            # Re-verify the engine: addresses may have changed, certs must still match.
            self.provision(name, on_step=on_step)
        return host

    def start(self, name, **kw):
        return self._lifecycle(name, "start", **kw)

    def stop(self, name, **kw):
        return self._lifecycle(name, "stop", **kw)

    def restart(self, name, **kw):
        return self._lifecycle(name, "restart", **kw)

    def kill(self, name, **kw):
        return self._lifecycle(name, "kill", **kw)

    # ---- rm ---------------------------------------------------------------
    def rm(self, name: str, *, force: bool = False, on_step: Reporter = lambda s: None) -> None:
        """Delete the host and its record. With force, the record goes even if the driver fails."""
        validate_name(name)
        if not self.store.exists(name):
            raise no_such_machine(name)
        with self.store.lock(name):
            try:
                host = self.store.load(name)
            except MachineError:
                if not force:
                    raise
                host = None
            if host is not None and host.machine.extra.get("Swarm"):
                from .swarm import Swarm  # leave the swarm first; refuses the last manager unless force

                Swarm(self, on_step=on_step).leave(name, force=force, host=host, locked=True)
            if host is not None:
                host.machine.phase = Phase.REMOVING.value
                try:
                    driver = self.driver_for(host, report=on_step)
                    on_step(f"removing {name} ({host.driver_name})")
                    driver.remove()
                except Exception as e:
                    if not force:
                        self.store.save(host)
                        raise MachineError(f"removing {name} failed: {e}",
                                           f"retry, or drop the local record anyway with: machine rm -f {name}") from None
                self._remove_local(host)
            else:  # an unreadable record: its files go, and a context we wrote for it (ours only)
                from . import clientconfig

                clientconfig.remove_context(context_name(name), store_path=self.store.path,
                                            missing_ok_if_foreign=True)
                self.store.remove(name)

    def _remove_local(self, host: Host) -> None:
        from . import clientconfig

        mdir = self.store.machine_dir(host.name)
        credentials.delete(mdir, host.name, host.machine.credentials)
        # ours only: a context of that name the user made is left alone (and a half-removed one finished)
        clientconfig.remove_context(context_name(host.name), store_path=self.store.path, missing_ok_if_foreign=True)
        self.store.remove(host.name)

    def openssh_argv(self, name: str, options: list[str], command: list[str]) -> list[str]:
        """An OpenSSH command line to machine NAME that checks the key pinned in its known_hosts."""
        import shutil

        host = self.load(name)
        driver = self.driver_for(host, persist=False)
        if not driver.capabilities.ssh:
            raise UsageError(f"machine {name} uses driver {host.driver_name}, which has no SSH access")
        known_hosts = self.store.machine_dir(name) / layout.KNOWN_HOSTS
        if not known_hosts.is_file():
            raise MachineError(f"machine {name} has no pinned host key for OpenSSH to check",
                               f"connect once with the built-in client: machine --native-ssh ssh {name}")
        exe = shutil.which("ssh")
        if exe is None:
            raise MachineError("OpenSSH's ssh is not installed", "install openssh-client, or use --native-ssh")
        ep = driver.ssh_endpoint()
        argv = [exe, "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-p", str(int(ep.port))]
        if ep.key_path:
            argv += ["-o", "IdentitiesOnly=yes", "-i", ep.key_path]
        return argv + list(options) + ["--", f"{ep.user}@{ep.host}"] + list(command)

    def audit(self, name: str, *, environ=None, timeout: float = 20.0) -> list:
        """Check machine NAME against the container-security checklist (machine/audit.py)."""
        from . import audit as checks
        from .engineapi import get_json

        environ = os.environ if environ is None else environ
        host, url = self._ready_url(name)
        a, mdir = host.auth, self.store.machine_dir(name)
        tls = dict(ca=a.ca_cert_path or str(mdir / layout.CA_CERT), cert=a.client_cert_path or
                   str(mdir / layout.CLIENT_CERT), key=a.client_key_path or str(mdir / layout.CLIENT_KEY))
        try:
            info = get_json(url, "/info", timeout=timeout, **tls)
            tls_verified = True
        except MachineError:
            raise
        except Exception as e:
            raise MachineError(f"cannot read the engine of {name} over TLS ({e})",
                               f"check it runs: machine status {name}") from None
        listed = get_json(url, "/containers/json", timeout=timeout, **tls)
        containers = [get_json(url, f"/containers/{c['Id']}/json", timeout=timeout, **tls) for c in listed]
        images = get_json(url, "/images/json", timeout=timeout, **tls)
        facts = checks.HostFacts()
        if self.driver_for(host, persist=False).capabilities.ssh:
            facts = self._audit_host_facts(name)
        return checks.audit(info, containers, images, facts, tls_verified=tls_verified,
                            content_trust=environ.get("DOCKER_CONTENT_TRUST", "") in ("1", "true"))

    def _audit_host_facts(self, name: str):
        """Plain-TCP dockerd listeners and pending updates, read over one SSH connection."""
        from . import audit as checks
        from .transfer import machine_connection

        script = r"""
ss -ltnpH 2>/dev/null | awk '/dockerd/ {print "listen " $4}'
if command -v apt-get >/dev/null; then echo "updates $(apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst ')"
elif command -v dnf >/dev/null; then echo "updates $(dnf -q check-update 2>/dev/null | grep -c '^[a-zA-Z0-9]')"
elif command -v zypper >/dev/null; then echo "updates $(zypper -q lu 2>/dev/null | grep -c '^v ')"; fi
. /etc/os-release 2>/dev/null && echo "os $PRETTY_NAME"
"""
        facts = checks.HostFacts()
        conn = machine_connection(self, name)
        try:
            out = conn.run_script(script, sudo=True, check=False, timeout=120).stdout
        finally:
            conn.close()
        host = self.load(name)
        tls_port = str(host.engine.port or DEFAULT_ENGINE_PORT)
        for line in out.splitlines():
            kind, _, value = line.partition(" ")
            if kind == "listen" and not value.endswith(":" + tls_port):
                facts.plain_tcp_listeners.append(value)
            elif kind == "updates" and value.strip().isdigit():
                facts.pending_updates = int(value)
            elif kind == "os":
                facts.os_name = value.strip()
        return facts

    def update_labels(self, name: str, labels: dict[str, str]) -> Host:
        """Record labels on the machine (GitLab Runner's `update-labels`); returns the record."""
        for key, value in labels.items():
            validate.label("--label", f"{key}={value}")
        host = self.load(name)
        with self.store.lock(name):
            host = self.load(name)
            host.machine.labels.update(labels)
            self.store.save(host)
        return host

    def engine_version(self, name: str, timeout: float = 10.0) -> str:
        """The version the machine's engine reports (it must be running)."""
        host, _ = self._ready_url(name)
        return self.check_engine(host, timeout=timeout).version

    def use(self, name: str) -> None:
        from . import clientconfig

        host = self.load(name)
        if not clientconfig.context_exists(context_name(name)):
            self._client_config(host)
        clientconfig.use_context(context_name(name), store_path=self.store.path)

    # ---- ls ----------------------------------------------------------------
    def ls(self, *, filters: dict[str, list[str]] | None = None, timeout: float = 10.0,
           probe: bool = True, environ=None) -> list[HostStatus]:
        timeout = validate.seconds("--timeout", timeout, low=0.001)
        records = self.store.load_all()
        active = self.active(environ)
        rows: list[HostStatus] = []
        work: list[tuple[HostStatus, Host]] = []
        for name, host in records:
            if isinstance(host, MachineError):
                rows.append(HostStatus(name=name, state=State.ERROR.value, error=host.message))
                continue
            row = HostStatus(name=name, driver=host.driver_name, url=self._url(host), active=(name == active),
                             cert_expiry=self._cert_expiry(host), labels=list(host.engine.labels),
                             swarm=_swarm_label(host), engine_options=host.engine.to_dict(),
                             swarm_options=host.swarm.to_dict())
            if host.machine.phase in (Phase.CREATING.value, Phase.FAILED.value, Phase.REMOVING.value):
                row.error = (host.machine.error or host.machine.phase).splitlines()[0]
            rows.append(row)
            work.append((row, host))
        pre = _prefilter(rows, filters or {})
        todo = [(r, h) for r, h in work if r in pre]
        if probe and todo:
            self._probe_all(todo, timeout)
        return _apply_filters([r for r in rows if r in pre], filters or {})

    def _probe_all(self, work: list[tuple[HostStatus, Host]], timeout: float) -> None:
        """Probe every host at once (threads bounded by open-file limits, not a small pool) under
        one total deadline: a host that trickles its answer cannot hold `ls` past it."""
        import dataclasses
        import resource
        import threading

        known = self._batch_states(work)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        slots = threading.BoundedSemaphore(max(8, min(1024, (soft if soft > 0 else 1024) // 4)))
        results: list[HostStatus | None] = [None] * len(work)

        def run(i: int, row: HostStatus, host: Host) -> None:
            with slots:
                mine = dataclasses.replace(row)
                self._probe(mine, host, timeout, known.get(host.name))
                results[i] = mine

        threads = [threading.Thread(target=run, args=(i, r, h), daemon=True) for i, (r, h) in enumerate(work)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout * 1.2 + 1.0  # per-host timeout, then a little grace
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for i, (row, _) in enumerate(work):
            done = results[i]
            if done is not None:
                row.__dict__.update(done.__dict__)
            else:  # still talking: reported, not waited for (daemon threads end with the process)
                row.state = row.state or State.TIMEOUT.value
                row.error = row.error or f"no answer within {timeout:g}s"
                row.response_ms = int(timeout * 1000)

    def _batch_states(self, work: list[tuple[HostStatus, Host]]) -> dict[str, State]:
        """States from drivers that answer for many machines in few API calls (Driver.batch_states):
        one DescribeInstances per AWS region instead of one per machine."""
        by_class: dict[type, list[Driver]] = {}
        for _, host in work:
            try:
                driver = self.driver_for(host, persist=False)
            except Exception:
                continue  # _probe reports it for that row
            by_class.setdefault(type(driver), []).append(driver)
        states: dict[str, State] = {}
        for cls, drivers in by_class.items():
            if len(drivers) < 2 and cls.batch_states is Driver.batch_states:
                continue
            try:
                got = cls.batch_states(drivers)
            except Exception:  # the per-machine path will say what is wrong
                got = None
            states.update(got or {})
        return states

    def _probe(self, row: HostStatus, host: Host, timeout: float, known_state: State | None = None) -> None:
        """State from the driver where it is cheap, engine version over TLS; per-host timeout."""
        t0 = time.monotonic()
        try:
            driver = self.driver_for(host, persist=False)
            row.state = str(known_state if known_state is not None else driver.state())
            if row.state == State.RUNNING.value and hasattr(driver, "published_ports"):
                row.ports = [f"127.0.0.1:{p['host_port']}->{p['guest_port']}/{p['proto']}"
                             for p in driver.published_ports()]
            if row.state == State.RUNNING.value and row.url:
                info = self.check_engine(host, timeout=timeout)
                row.docker_version = "v" + info.version if info.version else ""
        except MachineError as e:
            row.error = row.error or e.message
        except Exception as e:  # a driver bug must not hide the other rows
            row.error = row.error or f"{type(e).__name__}: {e}"
            row.state = row.state or State.ERROR.value
        row.response_ms = int((time.monotonic() - t0) * 1000)


# ---- helpers -----------------------------------------------------------------

def _swarm_label(host: Host) -> str:
    if host.machine.extra.get("Swarm"):  # swarm mode (machine/swarm.py)
        from .swarm import label

        return label(host)
    return classic_swarm_label(host)


def _with_hint(exc: BaseException, step: str, hint: str) -> MachineError:
    """The create error as the user sees it: what failed, at which step, and what now."""
    if isinstance(exc, KeyboardInterrupt):
        return MachineError(f"create interrupted during {step}", hint)
    if isinstance(exc, StepFailed):  # its message names the step; its resume hint no longer applies
        return MachineError(exc.message, hint)
    if isinstance(exc, MachineError):
        return MachineError(f"{step}: {exc.message}", f"{exc.hint}; {hint}" if exc.hint else hint)
    return MachineError(f"{step} failed: {type(exc).__name__}: {exc}", hint)


# ---- ls filters ----------------------------------------------------------------

def _prefilter(rows: list[HostStatus], filters: dict) -> list[HostStatus]:
    """Filters that need no probing, applied before we touch the network."""
    return [r for r in rows
            if row_matches(filters, name=r.name, driver=r.driver, labels=r.labels, swarm=r.swarm)]


def _apply_filters(rows: list[HostStatus], filters: dict) -> list[HostStatus]:
    if "state" in filters:
        rows = [r for r in rows if any(r.state.lower() == v.lower() for v in filters["state"])]
    return rows


def __getattr__(name: str):
    """`from machine.api import Cluster` (machine/cluster.py), loaded only when asked for."""
    if name == "Cluster":
        from .cluster import Cluster

        return Cluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
