"""The provisioning plan: host facts + what the record asks for -> the actions needed.

Pure functions, no I/O: tested as data (tests/unit/test_plan.py: a table of facts
and wishes -> the expected plan). The executor (core.py) gathers the facts over
SSH, asks for a plan, and carries it out; a plan with nothing to do does nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MachineError
from .facts import SUPPORTED, Facts
from .render import DROPIN, REMOTE_CERT, REMOTE_KEY, RESTART_ON, RemoteFile, changed

INSTALLABLE = ("script", "package", "bundle")
CERT_FILES = (REMOTE_CERT, REMOTE_KEY)


@dataclass(frozen=True)
class Wanted:
    """What the machine's record asks of its host."""

    strategy: str                       # script, package, bundle or none
    files: tuple[RemoteFile, ...]       # managed files, rendered for these facts
    cert_ok: bool = True                # the local server certificate covers every SAN and is fresh
    upgrade: bool = False               # install again even when an engine is there
    regenerate_cert: bool = False       # issue a new server certificate whatever the old one says


@dataclass(frozen=True)
class Plan:
    install: str | None = None                    # the install strategy to run, or nothing
    issue_cert: bool = False                      # issue a new server certificate first
    write: tuple[str, ...] = ()                   # managed files (remote paths) to write
    engine: str | None = None                     # "start", "restart" or nothing
    reasons: tuple[str, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        return not (self.install or self.issue_cert or self.write or self.engine)

    def describe(self) -> list[str]:
        """One line per action, for the user."""
        out = []
        if self.install:
            out.append(f"install the engine ({self.install})")
        if self.issue_cert:
            out.append("issue a new server certificate")
        out += [f"write {p}" for p in self.write]
        if self.engine:
            out.append(f"{self.engine} the engine")
        return out or ["nothing to change"]


def check_host(facts: Facts, strategy: str) -> None:
    """Refuse hosts we cannot configure, before changing anything."""
    if not facts.systemd:
        raise MachineError(f"{facts.os.name} does not run systemd; machine configures the engine "
                           "through a systemd drop-in", f"supported: {SUPPORTED}")
    if facts.family is None and not facts.dockerd and strategy != "script":
        raise MachineError(f"unsupported OS {facts.os.name!r} (ID={facts.os.id})",
                           f"supported: {SUPPORTED}; or install Docker yourself and use --engine-install=none")


def plan_install(facts: Facts, strategy: str, *, upgrade: bool = False) -> str | None:
    """The install strategy to run now, or None when the engine is there (and no upgrade asked)."""
    if facts.engine_installed and not upgrade:
        return None
    if strategy == "none":
        if facts.engine_installed:
            return None
        raise MachineError("there is no Docker Engine on the host and the install strategy is 'none'",
                           "install Docker on the host first, or use --engine-install=script|package "
                           "or --engine-bundle PATH")
    if strategy not in INSTALLABLE:
        raise MachineError(f"unknown engine install strategy {strategy!r}",
                           "use one of: script, package, bundle, none")
    return strategy


def plan_files(facts: Facts, files: tuple[RemoteFile, ...], *, issue_cert: bool) -> tuple[str, ...]:
    """Managed files whose content on the host differs (a new certificate always goes)."""
    todo = [f.path for f in changed(list(files), facts.hashes)]
    if issue_cert:
        todo += [p for p in CERT_FILES if p not in todo and any(f.path == p for f in files)]
    order = [f.path for f in files]
    return tuple(sorted(set(todo), key=order.index))


def plan_engine(facts: Facts, write: tuple[str, ...]) -> str | None:
    """Restart when a file dockerd reads changed; start when it is down; else leave it be.

    Restart, not start, even when the engine is not active: it may be still starting from
    boot with the old files (systemd says "activating"), and a start would only join that
    start job."""
    if any(p in RESTART_ON for p in write):
        return "restart"
    if not facts.engine_running or facts.docker_enabled not in ("enabled", "static"):
        return "start"
    return None


def make_plan(facts: Facts, wanted: Wanted) -> Plan:
    """Everything the host needs, in order: install, certificate, files, engine."""
    check_host(facts, wanted.strategy)
    install = plan_install(facts, wanted.strategy, upgrade=wanted.upgrade)
    issue_cert = wanted.regenerate_cert or not wanted.cert_ok
    write = plan_files(facts, wanted.files, issue_cert=issue_cert)
    engine = plan_engine(facts, write) if not install else ("restart" if facts.engine_running else "start")
    reasons = []
    if install:
        reasons.append("no engine on the host" if not facts.engine_installed else "upgrade asked")
    if issue_cert:
        reasons.append("regenerate asked" if wanted.regenerate_cert else "the server certificate misses "
                       "an address or is about to expire")
    if DROPIN in write:
        reasons.append("listen addresses or engine options changed")
    return Plan(install=install, issue_cert=issue_cert, write=write, engine=engine, reasons=tuple(reasons))
