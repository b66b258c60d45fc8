"""Fixtures shared by the e2e tests: the base image, an offline engine bundle, a busybox rootfs."""
from __future__ import annotations

import pytest

from harness.fixtures import busybox_rootfs, engine_image, shared_vm, vm_pool, vm_store_path  # noqa: F401
from harness.vm import ensure_image, vm_capable


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
