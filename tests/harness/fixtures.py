"""pytest fixtures for real VMs. Import them into a test module (or list this module
in a conftest's pytest_plugins):

    from harness.fixtures import vm_pool, shared_vm, busybox_rootfs  # noqa: F401
"""
from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from machine.fsutil import atomic_write

from .vm import TEST_CACHE, VMPool, ensure_image, vm_capable, vm_store


@pytest.fixture(scope="session")
def engine_image():
    reason = vm_capable()
    if reason:
        pytest.skip(reason)
    return ensure_image(engine=True)


@pytest.fixture(scope="session")
def vm_store_path(tmp_path_factory):
    return vm_store(tmp_path_factory)


@pytest.fixture(scope="session")
def vm_pool(engine_image, vm_store_path):
    """A pool of VMs shared by the session; every VM is removed at the end, pass or fail."""
    pool = VMPool(vm_store_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def shared_vm(vm_pool):
    """One running VM (engine image) for tests that only need a host to talk to. Between the
    modules that use it, it may be parked (stopped) to make room; each module gets it running."""
    vm = vm_pool.get("shared") or vm_pool.create("shared", standby=True)
    return vm_pool.ensure_running(vm)


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
    # two VM test streams may build it at once: the other never reads a half-written tar
    atomic_write(cache, buf.getvalue())
    return buf.getvalue()
