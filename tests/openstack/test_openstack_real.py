"""Real tier of the openstack driver: a real minimal OpenStack on loopback (stack.py).

Marked `openstack` (deselect with `-m "not openstack"`). The session fixture (conftest.py) starts the stack
once and stops exactly the processes it started; with MACHINE_OS_STACK_REUSE=1 a stack already
running in MACHINE_OS_STACK_STATE is used and left running. After every test the demo project
is checked through the API: no server, port, security group, key pair or server group that
was not there before.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.openstack,
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import PASSWORD  # noqa: E402

pytest.importorskip("openstack")

from fakes import driver_under_test  # noqa: E402
from machine.driver import Journal  # noqa: E402
from machine.errors import NotFound  # noqa: E402
from machine.model import State  # noqa: E402
from machine.drivers.openstack import OpenStackConfig, OpenStackDriver, resources  # noqa: E402
from machine.drivers.openstack.errors import (ActiveTimeout, AuthFailed, Conflict,  # noqa: E402
                                              OpenStackError, QuotaExceeded)


def inventory(c):
    pid = c.current_project_id
    return {
        "servers": sorted(s.id for s in c.compute.servers()),
        "ports": sorted(p.id for p in c.network.ports(project_id=pid)),
        "secgroups": sorted(g.id for g in c.network.security_groups(project_id=pid)),
        "keypairs": sorted(k.name for k in c.compute.keypairs()),
        "server_groups": sorted(g.id for g in c.compute.server_groups()),
        "floating_ips": _floating_ips(c, pid),
    }


def _floating_ips(c, pid):
    from openstack import exceptions as sdk

    try:
        return sorted(i.id for i in c.network.ips(project_id=pid))
    except sdk.NotFoundException:   # this stack runs no L3 service
        return []


CREATED: list = []   # drivers made by the current test


@pytest.fixture
def clean(demo):
    """Fails the test if the demo project holds anything afterwards that it did not hold before.

    Whatever is left is then deleted anyway, so one failure does not spill into the next test.
    """
    CREATED.clear()
    before = inventory(demo)
    yield before
    after = inventory(demo)
    for _ in range(20):   # Neutron may still be finishing a port a deleted server had
        if after == before:
            break
        time.sleep(0.5)
        after = inventory(demo)
    left = {k: sorted(set(after[k]) - set(before[k])) for k in after if set(after[k]) - set(before[k])}
    if left:
        _sweep(demo, left)
    assert not left, f"left behind: {left}"


def _sweep(c, left):
    for d in CREATED:
        try:
            d.remove()
        except Exception:  # noqa: BLE001 - best effort
            pass
    for sid in left.get("servers", []):
        c.compute.delete_server(sid, ignore_missing=True)
    time.sleep(2)
    for pid in left.get("ports", []):
        c.network.delete_port(pid, ignore_missing=True)
    for gid in left.get("server_groups", []):
        c.compute.delete_server_group(gid, ignore_missing=True)
    for gid in left.get("secgroups", []):
        c.network.delete_security_group(gid, ignore_missing=True)
    for name in left.get("keypairs", []):
        c.compute.delete_keypair(name, ignore_missing=True)


def make_driver(stack, tmp_path, name="real-1", **flags):
    values = dict(auth_url=stack.auth_url, username="demo", password=PASSWORD, tenant_name="demo",
                  domain_name="Default", flavor_name="m1.tiny", image_name="fake-img", net_name="public-flat")
    values.update(flags)
    d = driver_under_test(OpenStackDriver, tmp_path, name, options=values)
    d.machine_dir.mkdir(parents=True, exist_ok=True)
    d.poll_interval = 0.5
    d.delete_timeout = 60
    CREATED.append(d)
    return d


def later(d, tmp_path):
    """The driver a later `machine rm` builds from the saved record."""
    config = OpenStackConfig.from_record(copy.deepcopy(d.config.to_record()))
    config.apply_secrets(d.config.secrets())
    d2 = driver_under_test(OpenStackDriver, tmp_path, d.machine_name, config=config,
                           journal=Journal(copy.deepcopy(d.journal.entries)))
    d2.poll_interval, d2.delete_timeout = 0.5, 60
    return d2


def test_create_stop_start_restart_kill_rm(stack, demo, clean, tmp_path):
    d = make_driver(stack, tmp_path)
    d.pre_create_check()
    assert inventory(demo) == clean, "the pre-create check created something"
    t0 = time.monotonic()
    d.create()
    print(f"create took {time.monotonic() - t0:.1f}s")
    server = demo.compute.get_server(d.config.machine_id)
    assert server.status == "ACTIVE" and server.key_name == "real-1"
    assert server.metadata["machine-name"] == "real-1"
    assert d.config.ip_address.startswith("127.10.0.")
    assert d.ssh_endpoint().key_path and os.stat(d.ssh_endpoint().key_path).st_mode & 0o777 == 0o600
    group = demo.network.get_security_group(d.config.security_group_id)
    ports = sorted((r["protocol"], r["port_range_min"]) for r in group.security_group_rules if r.get("port_range_min"))
    assert ports == sorted([("tcp", 22), ("tcp", 2376), ("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)])
    record = json.dumps(d.config.to_record())   # what config.json's Driver object gets
    assert "Password" not in d.config.to_record() and PASSWORD not in record and PASSWORD not in repr(d.config)

    assert d.state() == State.RUNNING
    d.stop()
    assert d.state() == State.STOPPED
    d.start()
    assert d.state() == State.RUNNING
    d.restart()
    assert d.state() == State.RUNNING
    d.kill()
    assert d.state() == State.STOPPED

    rm = later(d, tmp_path)
    rm.remove()
    assert not list(rm.journal)
    from openstack import exceptions as sdk

    with pytest.raises(sdk.NotFoundException):
        demo.compute.get_server(d.config.machine_id)
    rm.remove()  # again: nothing to do


def test_clouds_yaml_existing_keypair_and_groups(stack, demo, clean, tmp_path, monkeypatch):
    """--openstack-cloud with the user's key pair and security groups: only port and server are ours."""
    key = tmp_path / "userkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    demo.compute.create_keypair(name="userkey", public_key=(tmp_path / "userkey.pub").read_text())
    docker = demo.network.create_security_group(name="docker", description="the user's")
    try:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(stack.clouds_yaml))
        d = make_driver(stack, tmp_path, auth_url=None, username=None, password=None, tenant_name=None,
                        domain_name=None, cloud="stack-demo", keypair_name="userkey", private_key_file=str(key),
                        sec_groups="default,docker", ssh_user="debian")
        d.pre_create_check()
        d.create()
        assert [e["kind"] for e in d.journal] == ["port", "server"]
        port = demo.network.get_port(next(e["id"] for e in d.journal if e["kind"] == "port"))
        assert docker.id in port.security_group_ids
        assert d.config.secrets() == {} and "secret" not in str(d.config)
        later(d, tmp_path).remove()
        assert demo.compute.find_keypair("userkey", ignore_missing=True) is not None
        assert demo.network.find_security_group(docker.id, ignore_missing=True) is not None
    finally:
        demo.compute.delete_keypair("userkey", ignore_missing=True)
        demo.network.delete_security_group(docker, ignore_missing=True)


def test_server_group_anti_affinity(stack, demo, clean, tmp_path):
    d = make_driver(stack, tmp_path, server_group="machine-test-group", server_group_policy="anti-affinity",
                    tag=["ci"], metadata=["purpose=test"])
    d.pre_create_check()
    d.create()
    group = demo.compute.get_server_group(d.config.server_group_id)
    assert group.member_ids == [d.config.machine_id]
    server = demo.compute.get_server(d.config.machine_id)
    assert server.metadata["purpose"] == "test" and "ci" in (server.tags or [])
    d.remove()


def test_401_wrong_password(stack, demo, clean, tmp_path):
    d = make_driver(stack, tmp_path, password="wrong")
    with pytest.raises(AuthFailed) as info:
        d.pre_create_check()
    assert "401" in str(info.value) and "wrong" not in str(info.value)


def test_unknown_image_flavor_network_are_named(stack, demo, clean, tmp_path):
    for flags, text in ((dict(image_name="no-such-img"), "image 'no-such-img' not found"),
                        (dict(flavor_name="m9.huge"), "flavor 'm9.huge' not found"),
                        (dict(net_name="no-net"), "network 'no-net' not found")):
        with pytest.raises(NotFound) as info:
            make_driver(stack, tmp_path, **flags).pre_create_check()
        assert text in str(info.value)


@pytest.mark.parametrize("image,text", [("big-disk-img", "disk is smaller than the minimum"),
                                        ("big-ram-img", "memory is too small")])
def test_400_from_nova_rolls_back(stack, demo, clean, tmp_path, image, text):
    d = make_driver(stack, tmp_path, image_name=image)
    d.pre_create_check()
    with pytest.raises(OpenStackError) as info:
        d.create()
    assert "(400)" in str(info.value) and text in str(info.value)
    d.remove()


def test_403_quota(stack, demo, admin, clean, tmp_path):
    project = demo.current_project_id
    admin.compute.update_quota_set(project, instances=0)
    try:
        with pytest.raises(QuotaExceeded):
            make_driver(stack, tmp_path).pre_create_check()
        # past the check, Nova's own 403 (quota changed between check and create)
        admin.compute.update_quota_set(project, instances=10)
        d = make_driver(stack, tmp_path)
        d.pre_create_check()
        admin.compute.update_quota_set(project, instances=0)
        with pytest.raises(QuotaExceeded) as info:
            d.create()
        assert "quota exceeded" in str(info.value).lower()
        d.remove()
    finally:
        admin.compute.update_quota_set(project, instances=10)


def test_409_keypair_exists(stack, demo, clean, tmp_path):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone"
    demo.compute.create_keypair(name="real-409", public_key=other)
    try:
        d = make_driver(stack, tmp_path, name="real-409")
        d.pre_create_check()
        with pytest.raises(Conflict) as info:
            d.create()
        assert "(409)" in str(info.value)
        d.remove()
        assert demo.compute.get_keypair("real-409").public_key.split()[:2] == other.split()[:2]
    finally:
        demo.compute.delete_keypair("real-409", ignore_missing=True)


def test_timeout_waiting_for_active(stack, demo, clean, tmp_path):
    d = make_driver(stack, tmp_path, active_timeout=0)
    d.pre_create_check()
    with pytest.raises(ActiveTimeout) as info:
        d.create()
    assert "did not become ACTIVE within 0s" in str(info.value)
    later(d, tmp_path).remove()


def test_no_valid_host_goes_to_error_and_rolls_back(stack, demo, admin, clean, tmp_path):
    compute = next(s for s in admin.compute.services() if s.binary == "nova-compute")
    admin.compute.disable_service(compute, compute.host, "nova-compute")
    try:
        d = make_driver(stack, tmp_path)
        d.pre_create_check()
        with pytest.raises(OpenStackError) as info:
            d.create()
        assert "went to ERROR" in str(info.value)
        d.remove()
    finally:
        admin.compute.enable_service(compute, compute.host, "nova-compute")


def test_interrupted_create_is_found_by_token(stack, demo, clean, tmp_path, monkeypatch):
    """Ctrl-C right after Nova accepted the server, before its ID was journaled."""
    real = resources.create_server

    def interrupted(conn, **attrs):
        real(conn, **attrs)
        raise KeyboardInterrupt
    monkeypatch.setattr(resources, "create_server", interrupted)
    d = make_driver(stack, tmp_path)
    d.pre_create_check()
    with pytest.raises(KeyboardInterrupt):
        d.create()
    assert [e["kind"] for e in d.journal if e.get("pending")] == ["server"]
    assert any(s.name == "real-1" for s in demo.compute.servers())
    later(d, tmp_path).remove()
