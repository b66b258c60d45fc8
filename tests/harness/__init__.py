"""Test harness for real virtual machines (QEMU under TCG here, KVM where real KVM exists).

    from harness import vm_pool, shared_vm         # pytest fixtures (import them into a test module)
    from harness.vm import ensure_image, vm_store, VMPool, VM

Images are built once and cached in $MACHINE_TEST_CACHE (default
/var/tmp/machine-test-cache), so CI and repeated runs reuse them; each test store
links its cache/ there. VMs are created through the qemu driver itself, shared
across the session, and torn down at session end even when tests fail.
"""
from .fixtures import engine_image, shared_vm, vm_pool, vm_store_path  # noqa: F401
from .vm import TEST_CACHE, VM, VMPool, ensure_image, vm_capable, vm_store  # noqa: F401

__all__ = ["engine_image", "shared_vm", "vm_pool", "vm_store_path",
           "TEST_CACHE", "VM", "VMPool", "ensure_image", "vm_capable", "vm_store"]
