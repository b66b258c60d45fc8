"""`machine audit`: a host checked against the container-security checklist our users are taught.

SANS's container-security points (host security, image provenance, monitoring, non-root
container processes, no secrets in containers, base image security, resource limits), as
far as they can be read through the engine API and SSH. Pure functions: facts in
(the engine's /info, the containers' inspect data, the images, a few host facts), results
out — tested as data in tests/unit/test_audit.py; `Machines.audit` gathers the facts.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

PASS, WARN, FAIL = "pass", "warn", "fail"
SECRET_NAME = re.compile(r"(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY)", re.I)
ROOT_USERS = ("", "0", "root", "0:0", "root:root")


@dataclass(frozen=True)
class Finding:
    check: str
    result: str          # pass, warn or fail
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class HostFacts:
    """What SSH tells about the host (None: not asked or not known)."""

    plain_tcp_listeners: list = field(default_factory=list)   # dockerd sockets without TLS (e.g. 2375)
    pending_updates: int | None = None
    os_name: str = ""


def _name(c: dict) -> str:
    return (c.get("Name") or c.get("Id", "")[:12]).lstrip("/")


def check_engine(info: dict, tls_verified: bool, host: HostFacts) -> list[Finding]:
    out = []
    if tls_verified and not host.plain_tcp_listeners:
        out.append(Finding("engine-tls", PASS, "the engine answered over mutual TLS; no plain TCP socket"))
    else:
        where = ", ".join(host.plain_tcp_listeners) or "the engine did not verify our client certificate"
        out.append(Finding("engine-tls", FAIL, f"the engine is reachable without TLS client verification ({where})"))
    out.append(Finding("live-restore", PASS if info.get("LiveRestoreEnabled") else WARN,
                       "containers survive engine restarts" if info.get("LiveRestoreEnabled") else
                       "live-restore is off: an engine restart stops every container (swarm nodes need it off)"))
    sec = " ".join(str(x) for x in info.get("SecurityOptions") or [])
    if "name=userns" in sec or "name=rootless" in sec:
        out.append(Finding("userns-or-rootless", PASS, "user namespaces remap container root"
                           if "userns" in sec else "the engine runs rootless"))
    else:
        out.append(Finding("userns-or-rootless", WARN, "root in a container is root on the host "
                           "(no userns-remap, not rootless)"))
    driver = info.get("LoggingDriver") or ""
    out.append(Finding("monitoring", PASS if driver and driver != "none" else WARN,
                       f"containers log through {driver}" if driver and driver != "none" else
                       "container logging is off (log driver none)"))
    if host.pending_updates is None:
        out.append(Finding("host-updates", WARN, "pending package updates could not be read"))
    elif host.pending_updates:
        out.append(Finding("host-updates", WARN, f"{host.pending_updates} package update(s) pending on "
                           f"{host.os_name or 'the host'}"))
    else:
        out.append(Finding("host-updates", PASS, "no package updates pending (as the host's package lists say)"))
    return out


def check_containers(containers: list[dict]) -> list[Finding]:
    """containers: `docker inspect` data of the running containers."""
    out = []
    if not containers:
        return [Finding("containers", PASS, "no running containers")]
    root, privileged, no_mem, no_cpu, secrets = [], [], [], [], []
    for c in containers:
        cfg, hc = c.get("Config") or {}, c.get("HostConfig") or {}
        n = _name(c)
        if str(cfg.get("User") or "").strip() in ROOT_USERS:
            root.append(n)
        if hc.get("Privileged"):
            privileged.append(n)
        if not hc.get("Memory"):
            no_mem.append(n)
        if not (hc.get("NanoCpus") or hc.get("CpuQuota") or hc.get("CpuShares")):
            no_cpu.append(n)
        for item in cfg.get("Env") or []:
            key, _, value = str(item).partition("=")
            if value and SECRET_NAME.search(key):
                secrets.append(f"{n}:{key}")
    for check, names, result, bad, good in (
            ("non-root", root, FAIL, "running as root: ", "every container runs as a non-root user"),
            ("privileged", privileged, FAIL, "privileged: ", "no privileged container"),
            ("memory-limits", no_mem, WARN, "no memory limit: ", "every container has a memory limit"),
            ("cpu-limits", no_cpu, WARN, "no CPU limit: ", "every container has a CPU limit"),
            ("secrets-in-env", secrets, FAIL, "secret-looking variables: ", "no secret-looking environment variables")):
        out.append(Finding(check, result, bad + ", ".join(sorted(names))) if names else Finding(check, PASS, good))
    return out


def check_images(images: list[dict], content_trust: bool) -> list[Finding]:
    """images: the engine's /images/json; provenance = pulled by digest from a registry."""
    local = [(i.get("RepoTags") or ["<none>"])[0] for i in images if not i.get("RepoDigests")]
    out = [Finding("image-provenance", WARN if local else PASS,
                   f"images without a registry digest (built or imported locally): {', '.join(sorted(local))}"
                   if local else "every image came from a registry by digest")]
    out.append(Finding("content-trust", PASS if content_trust else WARN,
                       "DOCKER_CONTENT_TRUST=1 in this shell" if content_trust else
                       "DOCKER_CONTENT_TRUST is not set: image signatures are not verified on pull"))
    return out


def audit(info: dict, containers: list[dict], images: list[dict], host: HostFacts, *, tls_verified: bool,
          content_trust: bool) -> list[Finding]:
    return check_engine(info, tls_verified, host) + check_containers(containers) + check_images(images, content_trust)


def worst(findings: list[Finding]) -> str:
    results = {f.result for f in findings}
    return FAIL if FAIL in results else WARN if WARN in results else PASS
