"""pytest fixtures for real VMs. Import them into a test module (or list this module
in a conftest's pytest_plugins):

    from harness import vm_pool, shared_vm, net_pair  # noqa: F401
"""
from __future__ import annotations

import pytest

from .vm import VMPool, ensure_image, vm_capable, vm_store, wait_ssh_parallel


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


@pytest.fixture(scope="module")
def net_pair(vm_pool):
    """Two VMs on one private network, booted in parallel; removed after the module."""
    names = ("net-a", "net-b")
    vms = [vm_pool.create(n, wait=False, network="e2enet", memory=768) for n in names]
    wait_ssh_parallel(vms)
    yield vms
    for n in names:
        vm_pool.remove(n)
