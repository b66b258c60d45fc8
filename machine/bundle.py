"""Offline engine bundles: a folder (or tar) of distribution packages plus manifest.json.

`machine create --engine-bundle DIR` uploads it over SSH and installs it with the
host's own package tools, for hosts without internet access.

`build()` makes a .deb bundle with this machine's apt: it resolves the engine's
dependencies against a baseline dpkg status (by default only the Essential
packages every Debian/Ubuntu system has, or the status file of the target host
itself for the smallest bundle) and downloads the .debs with --download-only.
Nothing on this machine is installed or changed. On the target, the bundle is
installed as a local apt repository, so apt installs only what is missing there.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import MachineError, UsageError

DEFAULT_PACKAGES = {"debian": ["docker.io", "apparmor"], "ubuntu": ["docker.io", "apparmor"]}
MANIFEST = "manifest.json"


@dataclass
class BundleInfo:
    path: Path
    distro: str
    packages: list[str]
    files: dict[str, str] = field(default_factory=dict)   # file name -> sha256
    size: int = 0
    seconds: float = 0.0


def parse_distro(distro: str) -> tuple[str, str]:
    name, sep, version = distro.strip().lower().rpartition("-")
    if not sep or not name or not version:
        raise UsageError(f"invalid --distro {distro!r}", "write it as ID-VERSION, e.g. debian-12 or ubuntu-22.04")
    return name, version


def _host_os() -> tuple[str, str]:
    from .provision.facts import os_info

    for p in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            info = os_info(Path(p).read_text())
            return info.id, info.version_id
        except OSError:
            continue
    return "", ""


def _stanzas(text: str) -> list[tuple[dict, str]]:
    out = []
    for stanza in text.split("\n\n"):
        lines = stanza.strip("\n").splitlines()
        if not lines:
            continue
        fields = {ln.split(":", 1)[0]: ln.split(":", 1)[1].strip()
                  for ln in lines if ":" in ln and not ln[:1].isspace()}
        out.append((fields, "\n".join(lines)))
    return out


def _dep_names(value: str) -> list[list[str]]:
    """"libc6 (>= 2.34), a | b:any" -> [["libc6"], ["a", "b"]]."""
    groups = []
    for group in value.split(","):
        alts = []
        for alt in group.split("|"):
            name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0].strip()
            if name:
                alts.append(name)
        if alts:
            groups.append(alts)
    return groups


def essential_status(source: str | os.PathLike = "/var/lib/dpkg/status") -> str:
    """Installed Essential packages and everything they depend on: what any target has.

    A status file of the Essential packages alone would be inconsistent (they depend
    on libraries that are not Essential), which apt refuses to resolve against.
    """
    try:
        text = Path(source).read_text()
    except OSError as e:
        raise MachineError(f"cannot read {source} ({e.strerror or e})") from None
    installed = {f["Package"]: (f, raw) for f, raw in _stanzas(text)
                 if "Package" in f and f.get("Status", "").endswith(" installed")}
    provides: dict[str, str] = {}
    for name, (f, _) in installed.items():
        for group in _dep_names(f.get("Provides", "")):
            provides.setdefault(group[0], name)
    keep: set[str] = set()
    todo = [n for n, (f, _) in installed.items() if f.get("Essential") == "yes"]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        f = installed[name][0]
        for field_name in ("Pre-Depends", "Depends"):
            for alts in _dep_names(f.get(field_name, "")):
                for alt in alts:
                    real = alt if alt in installed else provides.get(alt)
                    if real:
                        todo.append(real)
                        break
    return "\n\n".join(installed[n][1] for n in sorted(keep)) + "\n"


def build(distro: str, out_dir: str | os.PathLike, *, packages: list[str] | None = None,
          dpkg_status: str | os.PathLike | None = None, apt_sources: str | os.PathLike | None = None,
          on_line: Callable[[str], None] | None = None) -> BundleInfo:
    """Download a .deb bundle for `distro` into out_dir (created; must be empty or absent)."""
    t0 = time.monotonic()
    os_id, version = parse_distro(distro)
    from .provision.facts import FAMILIES

    family = FAMILIES.get(os_id)
    if family != "debian":
        if family in ("redhat", "suse"):
            raise UsageError(
                f"building a {distro} bundle needs that distribution's package tools",
                "on a host of that distribution run: dnf download --resolve --alldeps --destdir DIR "
                "moby-engine (or docker / docker-ce); a folder of .rpm files is a bundle")
        raise UsageError(f"no bundle recipe for {distro!r}", "supported: debian-N, ubuntu-N.N")
    if not shutil.which("apt-get"):
        raise MachineError("building a .deb bundle needs apt-get on this machine",
                           "run machine bundle build on a Debian or Ubuntu host")
    host_id, host_version = _host_os()
    if not apt_sources and (host_id, host_version.split(".")[0]) != (os_id, version.split(".")[0]):
        raise UsageError(
            f"this machine runs {host_id}-{host_version}, so its apt sources do not serve {distro}",
            f"build on a {distro} host, or pass --apt-sources FILE with {distro}'s apt sources")
    pkgs = list(packages or DEFAULT_PACKAGES.get(os_id, ["docker.io"]))
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty", "choose a new or empty output folder")
    (out / "partial").mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="machine-bundle-") as tmp:
        t = Path(tmp)
        status = t / "status"
        if dpkg_status:
            shutil.copyfile(dpkg_status, status)
        else:
            status.write_text(essential_status())
        opts = [
            "-o", f"Dir::State::status={status}",
            "-o", f"Dir::State::extended_states={t / 'extended_states'}",
            "-o", f"Dir::Cache::archives={out.absolute()}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
        ]
        if apt_sources:
            lists = t / "lists"
            (lists / "partial").mkdir(parents=True)
            src = Path(apt_sources).absolute()
            key = "Dir::Etc::SourceParts" if src.is_dir() else "Dir::Etc::SourceList"
            opts += ["-o", f"{key}={src}", "-o", f"Dir::State::Lists={lists}"]
            if key == "Dir::Etc::SourceList":
                opts += ["-o", f"Dir::Etc::SourceParts={t / 'none'}"]
            _apt(["apt-get", *opts, "-q", "update"], on_line)
        _apt(["apt-get", *opts, "-q", "-y", "--download-only", "--no-install-recommends", "install", *pkgs],
             on_line)
    shutil.rmtree(out / "partial", ignore_errors=True)
    try:
        (out / "lock").unlink()
    except FileNotFoundError:
        pass
    debs = sorted(out.glob("*.deb"))
    if not debs:
        raise MachineError(f"apt downloaded nothing for {' '.join(pkgs)}",
                           "the baseline already has every package; pass another --dpkg-status or none")
    files = {p.name: _sha256(p) for p in debs}
    manifest = {
        "distro": f"{os_id}-{version}",
        "packages": pkgs,
        "baseline": str(dpkg_status) if dpkg_status else "essential",
        "files": files,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BundleInfo(path=out, distro=manifest["distro"], packages=pkgs, files=files,
                      size=sum(p.stat().st_size for p in debs), seconds=round(time.monotonic() - t0, 1))


def _apt(cmd: list[str], on_line) -> None:
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if on_line:
        for line in p.stdout.splitlines():
            on_line(line)
    if p.returncode != 0:
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-15:])
        raise MachineError(f"apt-get failed (exit {p.returncode})\n{tail}")


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict:
    p = Path(path)
    try:
        return json.loads((p / MANIFEST).read_text()) if p.is_dir() else {}
    except (OSError, ValueError):
        return {}


def verify(path: str | os.PathLike) -> list[str]:
    """Files whose sha256 differs from the manifest (empty when the bundle is intact)."""
    p = Path(path)
    files = read_manifest(p).get("files", {})
    return [name for name, digest in files.items() if not (p / name).exists() or _sha256(p / name) != digest]
