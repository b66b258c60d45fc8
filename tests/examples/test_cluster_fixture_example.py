"""Example: a test that gets a ready swarm cluster from machine's pytest plugin.

The plugin (entry point pytest11 = machine.pytest_plugin) makes the cluster once per session
and removes it at the end. Configure it with ini options (machine_cluster_driver,
machine_cluster_workers, machine_cluster_driver_options = memory=640, …) or, as here, a marker.
Run: flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/examples -q
"""
import time

import os

import pytest

pytestmark = [
    pytest.mark.vm,
    # Written and run once here (it got to `swarm init` on three real VMs, which a TLS bug then failed;
    # that bug is fixed) but never yet seen green, and ~15 minutes on this 2-core machine: opt-in until it is.
    pytest.mark.skipif(os.environ.get("MACHINE_E2E_CLUSTER") != "1",
                       reason="cluster e2e is opt-in: MACHINE_E2E_CLUSTER=1 (three VMs, ~15 min under TCG)"),
]


@pytest.fixture(scope="session")
def machine_cluster_store(tmp_path_factory):
    """Our test store: a fresh one sharing the VM image cache (users keep the default store)."""
    from harness.vm import TEST_CACHE, ensure_image, vm_capable, vm_store

    if vm_capable() or not (TEST_CACHE / "busybox-rootfs.tar").exists():
        pytest.skip(vm_capable() or "no busybox rootfs cached (run the e2e tests once)")
    ensure_image(engine=True)
    return vm_store(tmp_path_factory, "example")


@pytest.mark.cluster(name="example", managers=1, workers=1, options={"memory": 640, "network_mode": "isolated"})
def test_replicated_service(swarm_cluster):
    from harness.vm import TEST_CACHE

    for node in swarm_cluster.machines:  # no registry here: bring the image to every node
        swarm_cluster.docker("import", "-", "busybox:ex", node=node, input=(TEST_CACHE / "busybox-rootfs.tar").read_bytes())
    swarm_cluster.docker("service", "create", "--detach", "--name", "hello", "--replicas", "2",
                         "--no-resolve-image", "busybox:ex", "sleep", "3600")
    for _ in range(100):
        if swarm_cluster.docker("service", "ls", "--format", "{{.Replicas}}").stdout.split() == ["2/2"]:
            break
        time.sleep(3)
    assert swarm_cluster.docker("service", "ls", "--format", "{{.Replicas}}").stdout.split() == ["2/2"]
    assert {n.state for n in swarm_cluster.nodes()} == {"Ready"}
