"""Disk images for VirtualBox: the same images the qemu driver takes (a distro cloud image, PATH or
URL), converted once to VDI in the store's cache, then cloned per machine and grown to the disk size."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from ...errors import MachineError, UsageError
from .runner import Runner

#: boots on VirtualBox as it is (the "genericcloud" flavour lacks the drivers of emulated hardware)
DEFAULT_IMAGE = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2"
URL_SCHEMES = ("http", "https", "ftp", "file")


def is_url(value: str) -> bool:
    return "://" in value and urlparse(value).scheme in URL_SCHEMES


def sniff(path: str) -> str:
    """qcow2, vdi, vmdk, vhd or raw, by the file's magic."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if b"<<< Oracle VM VirtualBox Disk Image >>>" in head[:64] or head[64:68] == b"\x7f\x10\xda\xbe":
        return "vdi"
    if head[:4] == b"KDMV" or head.startswith(b"# Disk DescriptorFile"):
        return "vmdk"
    if head[:8] == b"conectix":
        return "vhd"
    return "raw"


def download(url: str, cache_dir: Path, report=lambda s: None) -> str:
    import urllib.request

    from filelock import FileLock

    d = Path(cache_dir) / "downloads"
    d.mkdir(parents=True, exist_ok=True)
    dest = d / hashlib.sha256(url.encode()).hexdigest()
    with FileLock(str(dest) + ".lock"):
        if dest.is_file():
            return str(dest)
        report(f"downloading {url}")
        tmp = d / f".{dest.name}.{os.getpid()}.part"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
            os.replace(tmp, dest)
        except OSError as e:
            raise MachineError(f"cannot download {url}: {getattr(e, 'reason', None) or e}",
                               "check the URL, or download it yourself and pass --virtualbox-image PATH") from None
        finally:
            if tmp.exists():
                tmp.unlink()
    return str(dest)


def source(value: str) -> tuple[str, str]:
    """('url', URL) or ('path', absolute path); the default is Debian's generic cloud image."""
    value = (value or "").strip() or DEFAULT_IMAGE
    if is_url(value):
        return "url", value
    return "path", os.path.abspath(os.path.expanduser(value))


def check(value: str) -> None:
    kind, v = source(value)
    if kind == "path" and not os.path.isfile(v):
        raise UsageError(f"--virtualbox-image {value}: no such file", "pass a disk image (qcow2, raw, vmdk, vdi) or a URL")


def base_vdi(runner: Runner, path: str, cache_dir: Path, report=lambda s: None) -> str:
    """The image as VDI in cache/virtualbox/, converted once (keyed by path, size and mtime)."""
    from filelock import FileLock

    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:20]
    d = Path(cache_dir) / "virtualbox"
    d.mkdir(parents=True, exist_ok=True)
    dest = d / f"{key}.vdi"
    with FileLock(str(dest) + ".lock"):
        if dest.is_file():
            return str(dest)
        fmt = sniff(path)
        tmp = d / f".{key}.{os.getpid()}.vdi"
        report(f"converting {os.path.basename(path)} ({fmt}) to VDI")
        try:
            if fmt == "vdi":
                shutil.copyfile(path, tmp)
            elif shutil.which("qemu-img"):
                r = subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "vdi", path, str(tmp)],
                                   capture_output=True, text=True, timeout=3600)
                if r.returncode != 0:
                    raise MachineError(f"cannot convert {path} to VDI: {r.stderr.strip().splitlines()[-1:]}")
            elif fmt == "raw":
                runner.run("convertfromraw", path, str(tmp), "--format", "VDI", timeout=3600)
            elif fmt in ("vmdk", "vhd"):
                runner.run("clonemedium", "disk", path, str(tmp), "--format", "VDI", timeout=3600)
            else:
                raise MachineError(f"{path} is {fmt}, which VBoxManage cannot read",
                                   "install qemu-utils (qemu-img converts it), or pass a raw/vmdk/vdi image")
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()
    return str(dest)
