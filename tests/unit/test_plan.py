"""The provisioning plan as data: host facts + what the record asks -> the actions needed.

No SSH, no files: `make_plan` is a pure function, so each row below is one host
situation (OS family, engine there or not, config equal or not, certificate covering
the addresses or not) and the exact plan it must produce.
"""
from __future__ import annotations

import dataclasses

import pytest

from machine.errors import MachineError
from machine.provision import facts as F
from machine.provision.plan import Plan, Wanted, make_plan
from machine.provision.render import DAEMON_JSON, DROPIN, REMOTE_CA, REMOTE_CERT, REMOTE_KEY, RemoteFile

OS = {
    "debian": "ID=debian\nVERSION_ID=12",
    "ubuntu": "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=22.04",
    "rhel": 'ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.3"',
    "fedora": "ID=fedora\nVERSION_ID=39",
    "amazon": 'ID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2023"',
    "suse": 'ID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.5"',
    "alpine": "ID=alpine\nVERSION_ID=3.19",
}

FILES = (
    RemoteFile(REMOTE_CA, b"ca", 0o644),
    RemoteFile(REMOTE_CERT, b"cert", 0o644),
    RemoteFile(REMOTE_KEY, b"key", 0o600),
    RemoteFile(DAEMON_JSON, b"{}", 0o644),
    RemoteFile(DROPIN, b"[Service]", 0o644),
)
ALL = tuple(f.path for f in FILES)
CERT = (REMOTE_CERT, REMOTE_KEY)


def host_facts(os="debian", *, engine=True, running=True, enabled="enabled", config="same", systemd=True,
               swarm="inactive") -> F.Facts:
    """A host as the facts script would describe it."""
    if config == "same":
        hashes = {f.path: f.sha256 for f in FILES}
    elif config == "missing":
        hashes = {f.path: "" for f in FILES}
    else:  # one file edited on the host (e.g. daemon.json)
        hashes = {f.path: f.sha256 for f in FILES}
        hashes[config] = "0" * 64
    return F.Facts(os=F.os_info(OS[os]), systemd=systemd, dockerd="/usr/bin/dockerd" if engine else "",
                   docker_active="active" if engine and running else "inactive",
                   docker_enabled=enabled if engine else "", hashes=hashes, swarm=swarm)


def wanted(strategy="script", *, cert_ok=True, upgrade=False, regenerate=False) -> Wanted:
    return Wanted(strategy=strategy, files=FILES, cert_ok=cert_ok, upgrade=upgrade, regenerate_cert=regenerate)


# (id, facts, wishes, expected plan)
TABLE = [
    # a ready host: nothing to do, on every family
    *[(f"{os}-ready", host_facts(os), wanted(), Plan()) for os in ("debian", "ubuntu", "rhel", "fedora", "amazon",
                                                                    "suse")],
    # a fresh host: install by the chosen strategy, write everything, start
    *[(f"{os}-fresh-{s}", host_facts(os, engine=False, config="missing"), wanted(s, cert_ok=False),
       Plan(install=s, issue_cert=True, write=ALL, engine="start"))
      for os in ("debian", "ubuntu", "rhel", "fedora", "amazon", "suse") for s in ("script", "package", "bundle")],
    # an engine already there (installed by hand or by docker-machine): never reinstalled
    ("engine-present-unconfigured", host_facts(config="missing"), wanted(cert_ok=False),
     Plan(issue_cert=True, write=ALL, engine="restart")),
    ("engine-present-strategy-none", host_facts(config="missing"), wanted("none", cert_ok=False),
     Plan(issue_cert=True, write=ALL, engine="restart")),
    # configuration drift: only the changed file is written, and the engine restarted
    ("daemon-json-edited", host_facts(config=DAEMON_JSON), wanted(), Plan(write=(DAEMON_JSON,), engine="restart")),
    ("dropin-edited", host_facts(config=DROPIN), wanted(), Plan(write=(DROPIN,), engine="restart")),
    ("drift-engine-stopped", host_facts(config=DAEMON_JSON, running=False), wanted(),
     Plan(write=(DAEMON_JSON,), engine="restart")),
    # still starting from boot with the old files ("activating"): a start would join that job
    ("drift-engine-activating", dataclasses.replace(host_facts(config="missing"), docker_active="activating"),
     wanted(cert_ok=False),
     Plan(issue_cert=True, write=ALL, engine="restart")),
    # the certificate no longer covers the host's addresses (SANs differ) or is expiring
    ("sans-differ", host_facts(), wanted(cert_ok=False), Plan(issue_cert=True, write=CERT, engine="restart")),
    ("regenerate-asked", host_facts(), wanted(regenerate=True), Plan(issue_cert=True, write=CERT, engine="restart")),
    # the engine is there and configured but down or disabled: start it, write nothing
    ("engine-stopped", host_facts(running=False), wanted(), Plan(engine="start")),
    ("engine-disabled", host_facts(enabled="disabled"), wanted(), Plan(engine="start")),
    ("engine-static-unit", host_facts(enabled="static"), wanted(), Plan()),
    # upgrade: install again even though an engine is there
    ("upgrade", host_facts(), wanted("package", upgrade=True), Plan(install="package", engine="restart")),
    # an unknown OS with a script strategy is tried (get.docker.com knows more distros)
    ("alpine-script", host_facts("alpine", engine=False, config="missing"), wanted(cert_ok=False),
     Plan(install="script", issue_cert=True, write=ALL, engine="start")),
    # a swarm node is planned like any other (live-restore is the renderer's business)
    ("swarm-node-ready", host_facts(swarm="active"), wanted(), Plan()),
]


@pytest.mark.parametrize("facts,wish,expected", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_plan_table(facts, wish, expected):
    plan = make_plan(facts, wish)
    assert plan == expected
    assert plan.empty == (expected == Plan())


# (id, facts, wishes, message the plan refuses with, before anything changes)
REFUSALS = [
    ("no-systemd", host_facts(systemd=False), wanted(), "does not run systemd"),
    ("strategy-none-no-engine", host_facts(engine=False, config="missing"), wanted("none"),
     "install strategy is 'none'"),
    ("alpine-package", host_facts("alpine", engine=False, config="missing"), wanted("package"), "unsupported OS"),
    ("unknown-strategy", host_facts(engine=False, config="missing"), wanted("curl-pipe"), "unknown engine install"),
]


@pytest.mark.parametrize("facts,wish,message", [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS])
def test_plan_refuses(facts, wish, message):
    with pytest.raises(MachineError, match=message):
        make_plan(facts, wish)


def test_empty_plan_says_nothing_to_change():
    assert Plan().describe() == ["nothing to change"]
    plan = make_plan(host_facts(config=DROPIN), wanted(cert_ok=False))
    assert plan.describe() == ["issue a new server certificate", f"write {REMOTE_CERT}", f"write {REMOTE_KEY}",
                               f"write {DROPIN}", "restart the engine"]
