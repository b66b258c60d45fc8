"""End-to-end: a distro-style cloud image (one disk with its own bootloader, no kernel folder)
booted by `machine create -d qemu --qemu-image FILE --qemu-image-checksum ...`, the engine
installed from an offline bundle (--engine-bundle), then `docker --context NAME` answers.

No image comes from the internet. The image is built here, in the cloud-image layout, from the
project's own offline Debian base image (tests/harness, no engine baked in):

  1. the base image's ext4 root filesystem (label `root`, kernel and initrd in /boot) is copied
     to partition 1 of an MBR disk, starting at 1 MiB;
  2. /boot/grub/grub.cfg is written into that filesystem with debugfs (no mount needed);
  3. GRUB for BIOS (grub-pc-bin) goes where grub-install puts it: boot.img's code in the MBR,
     core.img (grub-mkimage with biosdisk, part_msdos, ext2, linux ...) in the gap after it;
  4. the disk is converted to qcow2 and cached, keyed by the base image and this recipe.

SeaBIOS (QEMU's default firmware) then boots it like a Debian/Ubuntu genericcloud image:
firmware -> MBR -> GRUB -> kernel with root=LABEL=root -> cloud-init reads the NoCloud seed.

Run: flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_qemu_cloud.py -x -q
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.vm import TEST_CACHE, vm_store

pytestmark = pytest.mark.vm

GRUB_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_MODULES = ["biosdisk", "part_msdos", "ext2", "normal", "linux", "search", "search_label", "configfile",
                "serial", "terminal", "echo", "test"]
PART_START = 2048  # sectors: 1 MiB, room for GRUB's core.img as grub-install leaves it
RECIPE = 1


def _run(*argv, **kw):
    r = subprocess.run(list(map(str, argv)), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {r.stderr.strip()[-500:]}")
    return r.stdout


def build_cloud_image(base_qcow2: Path, out: Path) -> Path:
    """The cloud-image layout from the offline base image (see the module doc)."""
    work = out.parent / f".{out.name}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        fs = work / "root.ext4"
        _run("qemu-img", "convert", "-O", "raw", base_qcow2, fs)
        listing = _run("/usr/sbin/debugfs", "-R", "ls /boot", fs)
        kernels = sorted(w for w in listing.split() if w.startswith("vmlinuz-"))
        assert kernels, listing
        version = kernels[-1][len("vmlinuz-"):]
        cfg = work / "grub.cfg"
        cfg.write_text(
            "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\nset timeout=0\n"
            "search --no-floppy --label root --set=root\n"
            f"linux /boot/vmlinuz-{version} root=LABEL=root rw console=ttyS0\n"
            f"initrd /boot/initrd.img-{version}\nboot\n")
        _run("/usr/sbin/debugfs", "-w", "-R", "mkdir /boot/grub", fs)
        _run("/usr/sbin/debugfs", "-w", "-R", f"write {cfg} /boot/grub/grub.cfg", fs)
        # MBR disk: partition 1 (Linux, active) holds the filesystem
        fs_bytes = fs.stat().st_size
        disk = work / "disk.raw"
        with open(disk, "wb") as f:
            f.truncate(PART_START * 512 + fs_bytes)
        _run("dd", f"if={fs}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none")
        fs.unlink()
        core = work / "core.img"
        _run("grub-mkimage", "-O", "i386-pc", "-o", core, "-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES)
        core_bytes = core.read_bytes()
        assert len(core_bytes) < (PART_START - 1) * 512
        boot = bytearray((GRUB_DIR / "boot.img").read_bytes())
        boot[0x66:0x68] = b"\x90\x90"     # as grub-setup does for hard disks: trust the BIOS's drive number
        mbr = bytearray(512)
        mbr[:440] = boot[:440]
        entry = struct.pack("<B3sB3sII", 0x80, b"\xff\xff\xff", 0x83, b"\xff\xff\xff", PART_START, fs_bytes // 512)
        mbr[446:462] = entry
        mbr[510:512] = b"\x55\xaa"
        with open(disk, "r+b") as f:
            f.write(mbr)
            f.seek(512)                    # core.img right after the MBR (diskboot's default blocklist)
            f.write(core_bytes)
        tmp = work / "cloud.qcow2"
        _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def cloud_image(base_image) -> Path:
    for tool in ("grub-mkimage", "qemu-img"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing (apt-get install grub-pc-bin qemu-utils)")
    if not (GRUB_DIR / "boot.img").is_file() or not Path("/usr/sbin/debugfs").exists():
        pytest.skip("GRUB for BIOS (grub-pc-bin) or debugfs (e2fsprogs) missing")
    key = hashlib.sha256(f"{RECIPE}:{base_image.dir.name}:{GRUB_MODULES}".encode()).hexdigest()[:12]
    out = TEST_CACHE / "cloud-layout" / f"debian-{key}.qcow2"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        from filelock import FileLock

        with FileLock(str(out) + ".lock"):
            if not out.exists():
                t0 = time.monotonic()
                build_cloud_image(base_image.disk, out)
                print(f"built {out} in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return out


def test_cloud_image_layout_boots_gets_the_engine_from_a_bundle(cloud_image, bundle_dir, tmp_path_factory):
    store = vm_store(tmp_path_factory, "cloudstore")
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store / "docker"))

    def machine(*args, timeout=1200):
        return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True,
                              env=env, timeout=timeout)

    info = json.loads(_run("qemu-img", "info", "--output=json", cloud_image))
    assert info["format"] == "qcow2" and "backing-filename" not in info
    digest = hashlib.sha256(cloud_image.read_bytes()).hexdigest()
    name = "cloud1"
    mdir = store / "machines" / name
    try:
        t0 = time.monotonic()
        r = machine("create", "-d", "qemu", "--qemu-network-mode", "isolated", "--qemu-image", str(cloud_image),
                    "--qemu-image-checksum", f"sha256:{digest}", "--qemu-ssh-user", "cloud",
                    "--qemu-memory", "1024", "--qemu-disk-size", "8", "--engine-bundle", str(bundle_dir), name)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr[-3000:]
        print(f"cloud-image create (boot + bundle install + TLS): {took:.0f}s", file=sys.stderr)
        cfg = json.loads((mdir / "config.json").read_text())["Driver"]
        assert not cfg.get("Kernel") and cfg["ImagePath"] == str(cloud_image), "booted by its own bootloader"
        docker = subprocess.run(["docker", "--context", name, "version", "--format", "{{.Server.Os}}"],
                                capture_output=True, text=True, env=env, timeout=120)
        assert docker.returncode == 0 and docker.stdout.strip() == "linux", docker.stderr
        r = machine("ssh", name, "--", "id -un; lsblk -bdno SIZE /dev/vda; findmnt -no SOURCE /; "
                    "cat /proc/cmdline; sudo -n true && echo SUDO")
        assert r.returncode == 0, r.stderr[-2000:]
        lines = r.stdout.split("\n")
        assert lines[0] == "cloud" and int(lines[1]) == 8 * 1024 ** 3, r.stdout   # grown to --qemu-disk-size
        assert lines[2] == "/dev/vda1" and "BOOT_IMAGE" in lines[3] and "SUDO" in r.stdout, r.stdout
        # a wrong checksum is refused before anything exists
        r = machine("create", "-d", "qemu", "--qemu-network-mode", "isolated", "--qemu-image", str(cloud_image),
                    "--qemu-image-checksum", "sha256:" + "0" * 64, "--engine-install", "none", "bad1")
        assert r.returncode == 1 and "checksum mismatch" in r.stderr, r.stderr
        assert not (store / "machines" / "bad1").exists()
    finally:
        r = machine("rm", "-y", "-f", name)
    assert not mdir.exists(), r.stderr
