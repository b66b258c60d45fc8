"""`machine gc -d aws`: what a lost create left (tagged as ours, no record) is listed and deleted
after confirmation; what a record holds is never touched (moto's server on 127.0.0.1)."""
from __future__ import annotations

import pytest

from aws.fixtures import aws_env, fast, make_driver, moto, moto_server  # noqa: F401
from aws.motoserver import UBUNTU_AMI


def loopback_subnet(moto) -> str:
    """A VPC whose private addresses are on loopback (127.20.0.0/26: nothing listens there)."""
    ec2 = moto.ec2()
    vpc = ec2.create_vpc(CidrBlock="127.20.0.0/24")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="127.20.0.0/26", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]


def test_gc_lists_and_deletes_only_orphans(make_driver, moto, cli, store_path, monkeypatch):
    from machine.api import Machines
    from machine.drivers.aws import AWSDriver
    from machine.errors import MachineError

    monkeypatch.setattr(AWSDriver, "poll_interval", 0.02)
    monkeypatch.setattr(AWSDriver, "terminate_timeout", 10.0)
    lost = make_driver("lost", elastic_ip="new")
    lost.create()                       # no record anywhere: an orphan
    api = Machines(store_path)
    with pytest.raises(MachineError):   # provisioning fails (nothing listens on 127.20.0.x:22); the record is kept
        api.create("kept", "aws", {"endpoint_url": moto.url, "ami": UBUNTU_AMI, "subnet_id": loopback_subnet(moto),
                                   "use_private_address": True}, keep_on_failure=True, ssh_deadline_s=1)
    kept = api.driver_for(api.load("kept"), persist=False).config
    assert kept.instance_id and kept.ip_address.startswith("127.20.0.")

    r = cli("gc", "-d", "aws", "--endpoint-url", moto.url, "--dry-run")
    assert r.code == 0, r
    listed = r.out.splitlines()[1:]
    kinds = sorted(l.split()[0] for l in listed)
    assert kinds == ["address", "instance", "key_pair", "security_group"], r.out
    assert all("lost" in l for l in listed) and not any(kept.instance_id in l for l in listed)

    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    r = cli("gc", "-d", "aws", "--endpoint-url", moto.url)
    assert "nothing deleted" in r.err and lost.config.instance_id in moto.leftovers()["instances"]

    r = cli("gc", "-d", "aws", "--endpoint-url", moto.url, "-y")
    assert r.code == 0 and "deleted 4 resource(s)" in r.err, r
    left = moto.leftovers()
    assert left["instances"] == [kept.instance_id] and left["key_pairs"] == [kept.keypair_name], left
    assert "addresses" not in left

    api.rm("kept")
    assert moto.leftovers().get("security_groups") is None or moto.leftovers() == {}
    assert moto.leftovers() == {}
    r = cli("gc", "-d", "aws", "--endpoint-url", moto.url, "-y")
    assert "nothing to collect" in r.err
