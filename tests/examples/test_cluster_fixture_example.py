"""Example: a test that gets a ready swarm cluster from machine's pytest plugin.

The plugin (entry point pytest11 = machine.pytest_plugin) makes the cluster once per session
and removes it at the end. Configure it with ini options (machine_cluster_driver,
machine_cluster_workers, machine_cluster_driver_options = memory=640, …) or, as here, a marker.
Run: flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/examples -q
"""
import time

import pytest

from harness.fixtures import busybox_rootfs  # noqa: F401  (the image the service runs)

# Run alone, it makes its own one-VM cluster. In CI it runs on the cluster e2e's three nodes
# (tests/e2e/test_cluster_e2e.py calls it with the fixture reusing that cluster), so the
# suite does not boot a cluster twice.
pytestmark = pytest.mark.vm


@pytest.fixture(scope="session")
def machine_cluster_store(tmp_path_factory):
    """Our test store: a fresh one sharing the VM image cache (users keep the default store)."""
    from harness.vm import ensure_image, vm_capable, vm_store

    if vm_capable():
        pytest.skip(vm_capable())
    ensure_image(engine=True)
    return vm_store(tmp_path_factory, "example")


@pytest.mark.cluster(name="example", managers=1, workers=0, options={"memory": 640, "network_mode": "isolated"})
def test_replicated_service(swarm_cluster, busybox_rootfs):
    for node in swarm_cluster.machines:  # no registry here: bring the image to every node
        swarm_cluster.docker("import", "-", "busybox:ex", node=node, input=busybox_rootfs)
    swarm_cluster.docker("service", "create", "--detach", "--name", "hello", "--replicas", "2",
                         "--no-resolve-image", "busybox:ex", "sleep", "3600")
    for _ in range(100):
        if swarm_cluster.docker("service", "ls", "--format", "{{.Replicas}}").stdout.split() == ["2/2"]:
            break
        time.sleep(3)
    assert swarm_cluster.docker("service", "ls", "--format", "{{.Replicas}}").stdout.split() == ["2/2"]
    assert {n.state for n in swarm_cluster.nodes()} == {"Ready"}
