"""Offline Debian image for the qemu driver, built with mmdebstrap.

    STORE/cache/images/<recipe-hash>/{base.qcow2, vmlinuz, initrd.img, recipe.json[, debs/]}

The hash covers everything that shapes the image (suite, packages, hooks, disk
size), not the mirror it came from, so an image is rebuilt only when its recipe
changes. Packages come from the host's own Debian package sources; nothing of the
host's apt configuration, auth files or keys is copied into the image — the
image gets a plain sources.list naming the same public archives.

engine=True bakes docker.io + apparmor in (the "golden" image: the provisioner
finds dockerd present and only configures TLS). engine=False also leaves an
offline .deb bundle of docker.io next to the image, for tests of the install step.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from ...errors import MachineError

RECIPE_VERSION = 1
DEFAULT_SUITE = "bookworm"
BASE_PACKAGES = (
    "systemd-sysv", "udev", "kmod", "dbus", "linux-image-amd64", "initramfs-tools",
    "openssh-server", "iproute2", "iputils-ping", "ca-certificates", "cloud-init",
    "e2fsprogs", "procps", "netbase", "sudo", "less",
)
ENGINE_PACKAGES = ("docker.io", "apparmor")
BUNDLE_PACKAGES = ("docker.io", "apparmor")
DISK_SIZE = {False: "3G", True: "4G"}

# Each hook runs with $1 = the image root. They are part of the recipe hash.
HOOKS = (
    'echo "LABEL=root / ext4 defaults,errors=remount-ro 0 1" > "$1/etc/fstab"',
    # per-VM identity comes at first boot: cloud-init makes host keys, systemd a machine-id
    'rm -f "$1"/etc/ssh/ssh_host_*; : > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"',
    'chroot "$1" systemctl enable systemd-networkd.service',
    'chroot "$1" systemctl disable apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer'
    ' 2>/dev/null || true',
    'mkdir -p "$1/etc/systemd/network" && printf "[Match]\\nName=en* eth*\\n[Network]\\nDHCP=ipv4\\n'
    '[Link]\\nRequiredForOnline=no\\n" > "$1/etc/systemd/network/99-fallback.network"',
    'mkdir -p "$1/etc/systemd/system/systemd-networkd-wait-online.service.d" && printf "[Service]\\n'
    'ExecStart=\\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30\\n"'
    ' > "$1/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"',
    'printf "datasource_list: [ NoCloud, None ]\\nlocale: false\\nsystem_info:\\n  network:\\n'
    '    renderers: [networkd]\\n" > "$1/etc/cloud/cloud.cfg.d/90-machine.cfg"',
    # keys only, also where a seed's user has no password yet
    'printf "PasswordAuthentication no\\nKbdInteractiveAuthentication no\\n"'
    ' > "$1/etc/ssh/sshd_config.d/50-machine.conf"',
    # the engine starts once, when the provisioner has written its TLS configuration (it
    # enables it then): not at first boot only to be restarted a few seconds later
    'chroot "$1" systemctl disable docker.service docker.socket containerd.service >/dev/null 2>&1 || true',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb',
)

# The seed agent (seed-agent.sh): our images' identity at boot without cloud-init's Python.
# Ordered before networkd (it writes the NICs' .network files), sshd (host keys) and the
# engine (a swarm node is named by the hostname). Only on when the driver says so.
SEED_AGENT_UNIT = """[Unit]
Description=Machine seed: hostname, SSH keys, network and mounts from the seed disk
DefaultDependencies=no
ConditionKernelCommandLine=machine.seed
Wants=network-pre.target dev-disk-by\\x2dlabel-cidata.device
After=local-fs.target systemd-remount-fs.service dev-disk-by\\x2dlabel-cidata.device
Before=network-pre.target systemd-networkd.service ssh.service docker.service sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/machine-seed
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
"""
#: what the driver appends to the kernel command line of an image with the agent
SEED_AGENT_CMDLINE = "machine.seed cloud-init=disabled"


def _install_file_hook(path: str, content: str, mode: str) -> str:
    blob = base64.b64encode(content.encode()).decode()
    return (f'mkdir -p "$1{os.path.dirname(path)}" && echo {blob} | base64 -d > "$1{path}"'
            f' && chmod {mode} "$1{path}"')


def seed_agent_hooks() -> list[str]:
    agent = (Path(__file__).with_name("seed-agent.sh")).read_text()
    return [
        _install_file_hook("/usr/local/sbin/machine-seed", agent, "0755"),
        _install_file_hook("/etc/systemd/system/machine-seed.service", SEED_AGENT_UNIT, "0644"),
        'chroot "$1" systemctl enable machine-seed.service',
    ]


def has_seed_agent(image_dir: str | os.PathLike) -> bool:
    """Whether a folder image (kernel + initrd + disk) was built with the seed agent: its
    recipe.json says so. A small read of an untrusted file: anything odd means no."""
    f = Path(image_dir) / "recipe.json"
    try:
        if not f.is_file() or f.stat().st_size > 1 << 20:
            return False
        return json.loads(f.read_text()).get("seed_agent") == 1
    except (OSError, ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class ImagePaths:
    dir: Path
    disk: Path
    kernel: Path
    initrd: Path
    engine: bool
    debs: Path | None = None

    @classmethod
    def at(cls, d: Path, engine: bool) -> "ImagePaths":
        debs = d / "debs"
        return cls(d, d / "base.qcow2", d / "vmlinuz", d / "initrd.img", engine,
                   debs if debs.is_dir() else None)

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.disk, self.kernel, self.initrd))


# ---- recipe --------------------------------------------------------------

def host_suite() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return DEFAULT_SUITE
    info = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))
    if info.get("ID") == "debian" and info.get("VERSION_CODENAME"):
        return info["VERSION_CODENAME"]
    return DEFAULT_SUITE


def recipe(engine: bool, suite: str | None = None) -> dict:
    packages = list(BASE_PACKAGES) + (list(ENGINE_PACKAGES) if engine else [])
    return {
        "version": RECIPE_VERSION,
        "suite": suite or host_suite(),
        "variant": "minbase",
        "packages": packages,
        "hooks": list(HOOKS) + seed_agent_hooks(),
        "seed_agent": 1,
        "disk_size": DISK_SIZE[bool(engine)],
        "bundle": [] if engine else list(BUNDLE_PACKAGES),
        "engine": bool(engine),
    }


def recipe_hash(rec: dict) -> str:
    blob = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def images_dir(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "images"


def cached_image(cache_dir: str | os.PathLike, engine: bool) -> ImagePaths | None:
    paths = ImagePaths.at(images_dir(cache_dir) / recipe_hash(recipe(engine)), engine)
    return paths if paths.complete() else None


def list_images(cache_dir: str | os.PathLike) -> list[dict]:
    """Every complete image in the cache, with its recipe and whether it is current."""
    out = []
    root = images_dir(cache_dir)
    current = {recipe_hash(recipe(e)) for e in (False, True)}
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        try:
            rec = json.loads((d / "recipe.json").read_text())
        except (OSError, ValueError):
            continue
        paths = ImagePaths.at(d, bool(rec.get("engine")))
        if not paths.complete():
            continue
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        out.append({"hash": d.name, "engine": bool(rec.get("engine")), "suite": rec.get("suite"),
                    "current": d.name in current, "size": size, "path": str(d),
                    "built": rec.get("built", "")})
    return out


# ---- package sources -------------------------------------------------------

def _parse_one_line(line: str) -> list[tuple[str, str, list[str], dict]]:
    line = line.split("#", 1)[0].strip()
    if not line.startswith("deb "):
        return []
    rest = line[4:].strip()
    opts: dict = {}
    if rest.startswith("["):
        inner, _, rest = rest[1:].partition("]")
        for kv in inner.split():
            k, _, v = kv.partition("=")
            opts[k.lower()] = v
    parts = rest.split()
    if len(parts) < 2:
        return []
    return [(parts[0], parts[1], parts[2:], opts)]


def _parse_deb822(text: str) -> list[tuple[str, str, list[str], dict]]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in para.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += " " + raw.strip()
                continue
            k, sep, v = raw.partition(":")
            if sep:
                key = k.strip().lower()
                fields[key] = v.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        opts = {"signed-by": fields["signed-by"]} if "signed-by" in fields else {}
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append((uri, suite, fields.get("components", "").split(), opts))
    return out


def host_sources(suite: str, etc: str | os.PathLike = "/etc/apt") -> list[str]:
    """The host's Debian package sources for `suite`, as plain one-line entries.

    Only entries for the suite (and its -updates/-security) signed by the Debian
    archive keyring (or unsigned-by, i.e. the default keyring) are kept; options,
    credentials in URIs and third-party repositories are dropped.
    """
    etc = Path(etc)
    entries = []
    files = [etc / "sources.list"]
    d = etc / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            entries += _parse_deb822(text)
        else:
            for line in text.splitlines():
                entries += _parse_one_line(line)
    lines = []
    for uri, s, comps, opts in entries:
        if not (s == suite or s.startswith(suite + "-") or s.startswith(suite + "/")):
            continue
        signed = opts.get("signed-by", "")
        if signed and "debian-archive-keyring" not in signed:
            continue
        u = urlparse(uri)
        if u.username or u.password or u.scheme not in ("http", "https", "file"):
            continue
        line = f"deb {uri} {s} {' '.join(comps or ['main'])}"
        if line not in lines:
            lines.append(line)
    return lines


def default_sources(suite: str) -> list[str]:
    return [
        f"deb http://deb.debian.org/debian {suite} main",
        f"deb http://deb.debian.org/debian {suite}-updates main",
        f"deb http://deb.debian.org/debian-security {suite}-security main",
    ]


# ---- build -----------------------------------------------------------------

def _need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not path:
        raise MachineError(f"{tool} not found", f"apt-get install {package}")
    return path


def mmdebstrap_argv(rec: dict, root: Path, sources: list[str], bundle_dir: Path | None) -> list[str]:
    mode = "root" if os.geteuid() == 0 else "unshare"
    # As root, mmdebstrap mounts /proc, /sys and /dev inside the rootfs; run it in a private
    # mount namespace so a killed build cannot leave those mounts behind on the host.
    private = [_need("unshare", "util-linux"), "--mount", "--propagation", "private"] if mode == "root" else []
    argv = private + [
        _need("mmdebstrap", "mmdebstrap"), f"--mode={mode}", f"--variant={rec['variant']}",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--include=" + ",".join(rec["packages"]),
    ]
    if bundle_dir is not None and rec["bundle"]:
        # Resolve the bundle against the image's own package state with mmdebstrap's apt,
        # downloading only: the .debs land outside the image.
        argv.append(
            "--customize-hook=mkdir -p " + _q(str(bundle_dir) + "/partial") +
            ' && APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -q -y --download-only'
            " -o APT::Install-Recommends=false -o Dir::Cache::archives=" + _q(str(bundle_dir) + "/") +
            " install " + " ".join(rec["bundle"]) + " >/dev/null"
            " && rm -rf " + _q(str(bundle_dir) + "/partial") + " " + _q(str(bundle_dir) + "/lock"))
    for hook in rec["hooks"]:
        argv.append("--customize-hook=" + hook)
    argv += [rec["suite"], str(root)] + sources
    return argv


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


def _run(argv: list[str], log, what: str) -> None:
    log(f"$ {' '.join(argv[:3])} ...")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise MachineError(f"image build failed at {what} (exit {proc.returncode})",
                           f"last output:\n{tail}")


def build_image(cache_dir: str | os.PathLike, engine: bool = True, force: bool = False,
                log: Callable[[str], None] | None = None) -> ImagePaths:
    """Return the cached image for this recipe, building it first if needed.

    Concurrent callers wait on a lock; the image appears atomically (built in a
    temporary folder, then renamed), so a half-built image is never used.
    """
    from filelock import FileLock

    log = log or (lambda msg: print(msg, file=sys.stderr))
    rec = recipe(engine)
    h = recipe_hash(rec)
    root_dir = images_dir(cache_dir)
    root_dir.mkdir(parents=True, exist_ok=True)
    final = root_dir / h
    paths = ImagePaths.at(final, engine)
    if paths.complete() and not force:
        return paths
    with FileLock(str(root_dir / f".{h}.lock")):
        paths = ImagePaths.at(final, engine)
        if paths.complete() and not force:
            return paths
        for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"),
                          ("qemu-img", "qemu-utils")):
            _need(tool, pkg)
        work = root_dir / f".{h}.build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            t0 = time.monotonic()
            rootfs = work / "rootfs"
            sources = host_sources(rec["suite"]) or default_sources(rec["suite"])
            bundle = work / "debs" if rec["bundle"] else None
            log(f"building {'engine' if engine else 'base'} image {h} ({rec['suite']}) with mmdebstrap")
            _run(mmdebstrap_argv(rec, rootfs, sources, bundle), log, "mmdebstrap")
            t1 = time.monotonic()
            kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
            initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
            if not kernels or not initrds:
                raise MachineError("image build produced no kernel/initrd", "see the mmdebstrap output")
            shutil.copyfile(kernels[-1], work / "vmlinuz")
            shutil.copyfile(initrds[-1], work / "initrd.img")
            raw = work / "base.raw"
            with open(raw, "wb") as f:
                f.truncate(_size_bytes(rec["disk_size"]))
            _run([_need("mkfs.ext4", "e2fsprogs"), "-q", "-L", "root", "-d", str(rootfs), str(raw)],
                 log, "mkfs.ext4")
            _run([_need("qemu-img", "qemu-utils"), "convert", "-f", "raw", "-O", "qcow2", str(raw),
                  str(work / "base.qcow2")], log, "qemu-img convert")
            raw.unlink()
            shutil.rmtree(rootfs)
            t2 = time.monotonic()
            meta = dict(rec, built=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        seconds={"mmdebstrap": round(t1 - t0, 1), "disk": round(t2 - t1, 1)})
            (work / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
            for p in work.rglob("*"):
                if p.is_file():
                    os.chmod(p, 0o644)  # base images are read-only inputs shared by all VMs
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
            log(f"image {h} ready in {t2 - t0:.0f}s: {final}")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return ImagePaths.at(final, engine)


def _size_bytes(size: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)", size.strip().upper())
    if not m:
        raise ValueError(size)
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " ")
