"""Fixtures shared by the e2e tests: the base image, an offline engine bundle, a busybox rootfs."""
from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from harness.fixtures import engine_image, net_pair, shared_vm, vm_pool, vm_store_path  # noqa: F401
from harness.vm import TEST_CACHE, ensure_image, vm_capable


@pytest.fixture(scope="session")
def base_image():
    reason = vm_capable()
    if reason:
        pytest.skip(reason)
    return ensure_image(engine=False)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    """A docker.io bundle for debian-12, built as `machine bundle build` does."""
    from machine import bundle
    from machine.errors import MachineError

    out = tmp_path_factory.mktemp("bundle") / "debian-12"
    try:
        info = bundle.build("debian-12", out)
    except MachineError as e:
        pytest.skip(f"cannot build a debian-12 bundle here: {e}")
    assert "docker.io" in " ".join(info.files)
    return out


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> bytes:
    """A tar of a rootfs holding only a static busybox, for `docker import`."""
    TEST_CACHE.mkdir(parents=True, exist_ok=True)  # a fresh machine has no cache folder yet
    cache = TEST_CACHE / "busybox-rootfs.tar"
    if cache.exists():
        return cache.read_bytes()
    d = tmp_path_factory.mktemp("busybox")
    r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=d, capture_output=True, text=True)
    debs = list(d.glob("busybox-static_*.deb"))
    if r.returncode != 0 or not debs:
        pytest.skip(f"busybox-static not available: {r.stderr.strip()[-200:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(d / "x")], check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(d / "x" / "bin" / "busybox"), arcname="bin/busybox")
        for name in ("sh", "sleep", "echo", "cat"):
            info = tarfile.TarInfo(f"bin/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    cache.write_bytes(buf.getvalue())
    return buf.getvalue()
