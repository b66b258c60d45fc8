"""provision_host: the executor of the provisioning plan (plan.py).

One SSH connection for the whole run; one facts script (one round trip) tells
what is there; plan.make_plan (pure) says what is missing; this module carries
it out, so a second provision of a ready host changes nothing and does not
restart the engine.

Steps (their names are what StepFailed and the record's failed_step say):
    wait-ssh, detect-os, install-engine, configure-engine, start-engine, verify-engine
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import tarfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import layout
from ..errors import MachineError, StepFailed
from ..fsutil import PRIVATE_FILE
from . import render
from .facts import Facts, parse_facts
from .plan import Plan, Wanted, make_plan
from .provisioners import RETRYABLE, Provisioner, describe_exit, provisioner_for

INSTALL_ATTEMPTS = 3
RETRY_SLEEP_S = 5.0
VERIFY_DEADLINE_S = 120.0
CERT_RENEW_DAYS = 30
REMOTE_BUNDLE_DIR = "/var/tmp"


@dataclass
class ProvisionResult:
    engine_version: str
    os_id: str
    plan: Plan = field(default_factory=Plan)     # what the first look at the host asked for
    changed: list[str] = field(default_factory=list)
    step_times: dict[str, float] = field(default_factory=dict)
    round_trips: int = 0
    connections: int = 0
    os_name: str = ""
    host_key_fingerprint: str = ""


class _Steps:
    def __init__(self, host, on_step: Callable[[str], None]):
        self.host = host
        self.on_step = on_step
        self.times: dict[str, float] = {}
        self.hint = f"fix the cause and run: machine provision {host.name}"

    @contextmanager
    def step(self, name: str):
        self.on_step(name)
        t0 = time.monotonic()
        try:
            yield
        except StepFailed:
            raise
        except MachineError as e:
            err = StepFailed(name, e.message, hint=e.hint or self.hint)
            for attr in ("debug", "expected_fingerprints", "presented_fingerprint", "result"):
                if hasattr(e, attr):
                    setattr(err, attr, getattr(e, attr))
            err.cause = e
            raise err from e
        except (OSError, EOFError) as e:
            raise StepFailed(name, f"{type(e).__name__}: {e}", hint=self.hint) from e
        finally:
            self.times[name] = round(time.monotonic() - t0, 3)


def gather_facts(conn, *, wait_cloud_init: bool = True, timeout: float | None = 1200,
                 data_root: str = "") -> Facts:
    script = render.bootstrap_script("facts.sh")
    env = {"MACHINE_WAIT_CLOUD_INIT": "1" if wait_cloud_init else "0"}
    if data_root:
        env["MACHINE_DATA_ROOT"] = data_root
    r = conn.run_script(script, sudo=True, env=env, args=list(render.MANAGED), timeout=timeout)
    return parse_facts(r.stdout)


def provision_host(store, host, driver, *, on_step: Callable[[str], None] = lambda s: None,
                   pin_host_key: bool = False, ssh_deadline_s: float = 300,
                   regenerate_certs: bool = False, upgrade: bool = False,
                   verify_deadline_s: float = VERIFY_DEADLINE_S) -> ProvisionResult:
    """Bring the engine on `host` to the state its record asks for; idempotent.

    Updates host.machine.ssh_key_fingerprint and host.auth's remote paths (the
    caller saves the record). `upgrade=True` re-runs the install strategy even
    when an engine is present (newest the strategy offers).
    """
    from .. import ssh
    from ..transfer import host_key_hint

    steps = _Steps(host, on_step)
    changed: list[str] = []
    mdir = Path(store.machine_dir(host.name))

    with steps.step("wait-ssh"):
        endpoint = driver.ssh_endpoint()
        if not endpoint.host:
            raise MachineError(f"machine {host.name} has no address to reach over SSH",
                               f"check: machine status {host.name}")
        conn = ssh.wait_for_ssh(endpoint, mdir / layout.KNOWN_HOSTS, deadline_s=ssh_deadline_s,
                                expected_fingerprint=host.machine.ssh_key_fingerprint or "",
                                pin=pin_host_key, hint=host_key_hint(host.name),
                                gone=driver.stopped_reason)
        host.machine.ssh_key_fingerprint = conn.host_key_fingerprint
        if conn.pinned:
            changed.append("host-key-pinned")
    connections = 1
    try:
        with steps.step("detect-os"):
            facts = gather_facts(conn, data_root=host.engine.graph_dir)
            if facts.cloud_init_wait_s:
                steps.times["cloud-init-wait"] = facts.cloud_init_wait_s
            prov = provisioner_for(facts)
            first = plan = make_plan(facts, _wanted(store, host, driver, facts, upgrade=upgrade,
                                                   regenerate=regenerate_certs))

        with steps.step("install-engine"):
            if plan.install:
                _install_engine(conn, host, prov, facts, plan.install, upgrade=upgrade)
                changed.append("engine-installed" if not facts.engine_installed else "engine-upgraded")
                facts = gather_facts(conn, wait_cloud_init=False, data_root=host.engine.graph_dir)
                if not facts.dockerd:
                    raise MachineError("the engine install finished but there is no dockerd on the host")
                plan = make_plan(facts, _wanted(store, host, driver, facts, regenerate=regenerate_certs))

        with steps.step("configure-engine"):
            if plan.issue_cert:
                _issue_server_cert(store, host, driver, facts)
                changed.append("server-cert-generated")
            files = {f.path: f for f in _desired_files(store, host, facts)}
            todo = [files[p] for p in plan.write]
            if todo:
                conn.run_script(render.write_script(todo), sudo=True)
                changed.extend(f.path for f in todo)
            a = host.auth
            a.ca_cert_remote_path = render.REMOTE_CA
            a.server_cert_remote_path = render.REMOTE_CERT
            a.server_key_remote_path = render.REMOTE_KEY

        with steps.step("start-engine"):
            if plan.engine:
                r = conn.run_script(render.bootstrap_script("start-engine.sh"), sudo=True, args=[plan.engine],
                                    check=False, timeout=300)
                if r.exit_status != 0:
                    raise MachineError(f"{describe_exit(r.exit_status)}\n{r.tail(25)}",
                                       f"check the engine options, then run: machine provision {host.name}")
                changed.append("engine-restarted" if plan.engine == "restart" else "engine-started")

        with steps.step("verify-engine"):
            version = _verify(store, host, driver, deadline_s=verify_deadline_s)
    finally:
        round_trips = conn.round_trips
        conn.close()
    return ProvisionResult(engine_version=version, os_id=facts.os.id, os_name=facts.os.name,
                           plan=first, changed=changed, step_times=steps.times, round_trips=round_trips,
                           connections=connections, host_key_fingerprint=conn.host_key_fingerprint)


# --------------------------------------------------------------------------- install


def _install_engine(conn, host, prov: Provisioner, facts: Facts, strategy: str, *, upgrade: bool) -> None:
    """Run the install strategy the plan chose, retrying on the exit codes that say "try again"."""
    env = {"MACHINE_FORCE": "1"} if upgrade else {}
    last = None
    for attempt in range(1, INSTALL_ATTEMPTS + 1):
        if strategy == "bundle":
            remote, digest, packages = _upload_bundle(conn, host.engine.bundle, prov)
            script, args = prov.bundle_script(remote, digest, packages)
        else:
            script, args = prov.install_script(strategy, install_url=host.engine.install_url)
        r = conn.run_script(script, sudo=True, args=args, env=env, check=False, timeout=1800)
        if r.exit_status == 0:
            return
        last = r
        if r.exit_status not in RETRYABLE:
            break
        time.sleep(RETRY_SLEEP_S * attempt)
    what = {"bundle": f"the engine bundle {host.engine.bundle}",
            "script": f"the install script {host.engine.install_url}",
            "package": f"the {prov.family} packages ({getattr(prov, 'package_names', '')})"}[strategy]
    hint = {30: f"the script ran but installed nothing usable on {facts.os.name}; check {host.engine.install_url} "
                "supports this OS, or use --engine-install=package or --engine-bundle"}.get(last.exit_status)
    raise MachineError(f"installing {what} failed ({describe_exit(last.exit_status)}, "
                       f"attempt {attempt} of {INSTALL_ATTEMPTS})\n{last.tail(20)}", hint)


def bundle_members(path: Path) -> list[Path]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".deb", ".rpm"))
    manifest = path / "manifest.json"
    return files + ([manifest] if manifest.exists() else [])


def _upload_bundle(conn, bundle: str, prov: Provisioner) -> tuple[str, str, list[str]]:
    """Send the bundle as one tar over SFTP (hashed on the way).

    Returns (remote path, sha256, packages to install): the packages come from the
    bundle's manifest.json; without one the host installs every package in it.
    """
    path = Path(bundle).expanduser()
    if not path.exists():
        raise MachineError(f"engine bundle {path} does not exist",
                           "build one with: machine bundle build --distro DISTRO -o DIR")
    remote = f"{REMOTE_BUNDLE_DIR}/machine-bundle-{uuid.uuid4().hex[:12]}.tar"
    h = hashlib.sha256()

    class Hashing:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            h.update(data)
            self.f.write(data)
            return len(data)

    packages: list[str] = []
    if path.is_dir():
        packages = _manifest_packages(path / "manifest.json")
        members = bundle_members(path)
        prov.check_bundle([m.name for m in members])

        def write(f):
            with tarfile.open(fileobj=Hashing(f), mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for m in members:
                    info = tar.gettarinfo(str(m), arcname=m.name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    with open(m, "rb") as src:
                        tar.addfile(info, src)
    else:
        try:
            with tarfile.open(path) as t:
                names = [os.path.basename(n) for n in t.getnames()]
        except (tarfile.TarError, OSError) as e:
            raise MachineError(f"engine bundle {path} is not a directory or a tar file ({e})") from None
        prov.check_bundle(names)

        def write(f):
            with open(path, "rb") as src:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    Hashing(f).write(chunk)

    conn.put_stream(remote, write, mode=0o600)
    return remote, h.hexdigest(), packages


def _manifest_packages(manifest: Path) -> list[str]:
    import json

    try:
        doc = json.loads(manifest.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise MachineError(f"cannot read the bundle manifest {manifest} ({e})") from None
    pkgs = doc.get("packages") or []
    return [str(p) for p in pkgs if isinstance(p, str) and p and not p.startswith("-")]


# --------------------------------------------------------------------------- configure


def cert_paths(store, host) -> dict[str, Path]:
    a = host.auth
    mdir = Path(store.machine_dir(host.name))
    return {
        "ca": Path(a.ca_cert_path or store.ca_cert()),
        "ca_key": Path(a.ca_private_key_path or store.ca_key()),
        "server": Path(a.server_cert_path or mdir / layout.SERVER_CERT),
        "server_key": Path(a.server_key_path or mdir / layout.SERVER_KEY),
        "client": Path(a.client_cert_path or store.client_cert()),
        "client_key": Path(a.client_key_path or store.client_key()),
    }


def server_cert_sans(host, driver, facts: Facts | None = None) -> list[str]:
    """Every name the engine is reached by: driver addresses, the engine endpoint,
    --tls-san extras, the host's own hostname and the machine name."""
    out: list[str] = []
    out += list(driver.addresses() or [])
    out.append(driver.engine_endpoint(int(host.engine.port or layout.DEFAULT_ENGINE_PORT))[0])
    priv = driver.private_address()
    if priv:
        out.append(priv)
    out += list(host.auth.server_cert_sans or [])
    if facts and facts.hostname:
        out.append(facts.hostname)
    out.append(host.name)
    seen, result = set(), []
    for s in out:
        key = _san_key(s)
        if key and key not in seen:
            seen.add(key)
            result.append(str(s).strip().strip("[]"))
    return result


def _san_key(s) -> str:
    s = str(s or "").strip().strip("[]")
    if not s:
        return ""
    try:
        return "ip:" + str(ipaddress.ip_address(s.split("%", 1)[0]))
    except ValueError:
        return "dns:" + s.lower()


def server_cert_ok(paths: dict[str, Path], sans: list[str]) -> bool:
    """True when the local server pair exists, matches, is signed by the CA, covers
    every SAN and is not about to expire."""
    from .. import certs

    if not (paths["server"].exists() and paths["server_key"].exists()):
        return False
    try:
        certs.verify_chain(paths["ca"], paths["server"])
        certs.check_key_pair(paths["server"], paths["server_key"])
        info = certs.cert_info(paths["server"])
    except MachineError:
        return False
    have = {_san_key(s) for s in info.sans}
    if not {_san_key(s) for s in sans} <= have:
        return False
    return info.days_left > CERT_RENEW_DAYS


def _wanted(store, host, driver, facts: Facts, *, upgrade: bool = False, regenerate: bool = False) -> Wanted:
    """What the record asks for, read from the store (the plan's input besides the facts)."""
    paths = cert_paths(store, host)
    for k in ("ca", "ca_key"):
        if not paths[k].exists():
            raise MachineError(f"the CA file {paths[k]} is missing",
                               "restore the store's certs/ folder, or regenerate certificates with "
                               "machine regenerate-certs --client-certs")
    cert_ok = server_cert_ok(paths, server_cert_sans(host, driver, facts))
    # A certificate to be issued is written anew whatever its content; the rest is compared.
    files = tuple(_desired_files(store, host, facts, placeholder_cert=not cert_ok))
    return Wanted(strategy=host.engine.strategy, files=files, cert_ok=cert_ok, upgrade=upgrade,
                  regenerate_cert=regenerate)


def _issue_server_cert(store, host, driver, facts: Facts) -> None:
    from .. import certs

    paths = cert_paths(store, host)
    certs.generate_server_cert(paths["ca"], paths["ca_key"], paths["server"], paths["server_key"],
                               common_name=host.name, sans=server_cert_sans(host, driver, facts),
                               key_type=host.machine.tls_key_type or layout.DEFAULT_TLS_KEY_TYPE,
                               days=int(host.machine.cert_days or layout.DEFAULT_CERT_DAYS))
    os.chmod(paths["server_key"], PRIVATE_FILE)


def _desired_files(store, host, facts: Facts, *, placeholder_cert: bool = False) -> list[render.RemoteFile]:
    paths = cert_paths(store, host)
    if placeholder_cert:
        cert_pem = key_pem = b""
    else:
        cert_pem, key_pem = paths["server"].read_bytes(), paths["server_key"].read_bytes()
    live_restore = bool(host.engine.live_restore) and not facts.in_swarm
    return render.desired_files(
        host, provider=host.driver_name, exec_start=facts.exec_start(),
        ca_pem=paths["ca"].read_bytes(), cert_pem=cert_pem, key_pem=key_pem, live_restore=live_restore)


# --------------------------------------------------------------------------- verify


def _verify(store, host, driver, *, deadline_s: float) -> str:
    from ..engineapi import wait_for_engine

    paths = cert_paths(store, host)
    info = wait_for_engine(driver.engine_url(int(host.engine.port or layout.DEFAULT_ENGINE_PORT)), ca=str(paths["ca"]), cert=str(paths["client"]),
                           key=str(paths["client_key"]), deadline_s=deadline_s)
    return info.version
