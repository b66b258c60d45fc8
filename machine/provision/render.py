"""Render the engine's configuration from templates/ and decide what changed.

Files machine manages on a host (remote paths):
    /etc/docker/ca.pem, server.pem, server-key.pem (0600)
    /etc/docker/daemon.json                                  TLS + engine options
    /etc/systemd/system/docker.service.d/10-machine.conf     listen addresses, env, flags

docker-machine's drop-in name (10-machine.conf) is kept, so re-provisioning a host
docker-machine configured replaces its drop-in instead of stacking a second one.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..layout import DEFAULT_ENGINE_PORT

REMOTE_CA = "/etc/docker/ca.pem"
REMOTE_CERT = "/etc/docker/server.pem"
REMOTE_KEY = "/etc/docker/server-key.pem"
DAEMON_JSON = "/etc/docker/daemon.json"
DROPIN = "/etc/systemd/system/docker.service.d/10-machine.conf"
MANAGED = (REMOTE_CA, REMOTE_CERT, REMOTE_KEY, DAEMON_JSON, DROPIN)

#: which changed files need the engine restarted (all of them today: dockerd
#: re-reads neither TLS files nor listen addresses on SIGHUP)
RESTART_ON = set(MANAGED)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    data: bytes
    mode: int

    @property
    def sha256(self) -> str:
        return sha256(self.data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def systemd_quote(value: str) -> str:
    """Quote one word for a unit file: double quotes, backslash escapes, %% for %."""
    s = str(value).replace("%", "%%")
    if s and not any(c in s for c in ' \t"\'\\;$') :
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["json"] = lambda v: json.dumps(v)
    env.filters["systemd_quote"] = systemd_quote
    return env


def _load_template(name: str) -> str:
    return resources.files("machine.templates").joinpath(name).read_text()


def bootstrap_script(name: str, *, common: bool = True) -> str:
    """A script from bootstrap/, with common.sh's helpers in front."""
    files = resources.files("machine.bootstrap")
    body = files.joinpath(name).read_text()
    if common:
        body = files.joinpath("common.sh").read_text() + "\n" + body
    return body


def engine_flags(arbitrary_flags: list[str]) -> list[str]:
    """docker-machine's --engine-opt values ("dns=8.8.8.8", "debug") as dockerd flags."""
    out = []
    for f in arbitrary_flags or []:
        f = str(f).strip()
        if not f:
            continue
        out.append(f if f.startswith("-") else f"--{f}")
    return out


def labels_for(host, *, provider: str) -> list[str]:
    labels = [str(x) for x in host.engine.labels or []]
    if not any(lbl.split("=", 1)[0] == "provider" for lbl in labels):
        labels.append(f"provider={provider}")
    return labels


def render_daemon_json(host, *, provider: str, live_restore: bool | None = None) -> str:
    e = host.engine
    text = _env().get_template("daemon.json.j2").render(
        tlsverify=bool(e.tls_verify),
        ca_path=REMOTE_CA, cert_path=REMOTE_CERT, key_path=REMOTE_KEY,
        live_restore=bool(e.live_restore if live_restore is None else live_restore),
        labels=labels_for(host, provider=provider),
        insecure_registries=list(e.insecure_registry or []),
        registry_mirrors=list(e.registry_mirror or []),
        storage_driver=e.storage_driver or "",
        log_level=e.log_level or "",
        data_root=e.graph_dir or "",
        dns=list(e.dns or []),
        ipv6=bool(e.ipv6),
        selinux_enabled=bool(e.selinux_enabled),
    )
    json.loads(text)  # a template bug must never reach a host as a broken daemon.json
    return text


def render_dropin(host, *, exec_start: list[str]) -> str:
    return _env().get_template("docker-tls.conf.j2").render(
        machine_name=host.name,
        env=[str(x) for x in host.engine.env or []],
        exec_start=exec_start,
        port=int(host.engine.port or DEFAULT_ENGINE_PORT),
        flags=engine_flags(host.engine.arbitrary_flags),
    )


def desired_files(host, *, provider: str, exec_start: list[str], ca_pem: bytes, cert_pem: bytes,
                  key_pem: bytes, live_restore: bool | None = None) -> list[RemoteFile]:
    return [
        RemoteFile(REMOTE_CA, ca_pem, 0o644),
        RemoteFile(REMOTE_CERT, cert_pem, 0o644),
        RemoteFile(REMOTE_KEY, key_pem, 0o600),
        RemoteFile(DAEMON_JSON, render_daemon_json(host, provider=provider, live_restore=live_restore).encode(),
                   0o644),
        RemoteFile(DROPIN, render_dropin(host, exec_start=exec_start).encode(), 0o644),
    ]


def changed(files: list[RemoteFile], remote_hashes: dict[str, str]) -> list[RemoteFile]:
    """Files whose content differs from the host's (missing counts as different)."""
    return [f for f in files if remote_hashes.get(f.path, "") != f.sha256]


def write_script(files: list[RemoteFile]) -> str:
    """One shell script that writes every file atomically with its mode."""
    import base64

    lines = [
        "set -e",
        "umask 077",
        "put() {",
        '  mkdir -p "$(dirname "$1")"',
        '  tmp="$1.machine-tmp"',
        '  printf %s "$3" | base64 -d > "$tmp"',
        '  chmod "$2" "$tmp"',
        '  mv -f "$tmp" "$1"',
        "}",
    ]
    for f in files:
        b64 = base64.b64encode(f.data).decode()
        lines.append(f"put {f.path} {f.mode:o} '{b64}'")
    if any(f.path == DROPIN for f in files):
        lines.append("if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi")
    return "\n".join(lines) + "\n"
