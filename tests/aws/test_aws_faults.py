"""Fault injection at every AWS call of `machine create -d aws` (moto's server on 127.0.0.1).

For each call a create makes (found by recording a successful create), and each of
InstanceLimitExceeded, RequestLimitExceeded, UnauthorizedOperation, InsufficientInstanceCapacity
and a read timeout: the create fails with one line naming the AWS error code, the rollback
leaves nothing in moto (no instance, key pair, group, volume, address or spot request) and no
record in the store. Errors in the pre-create check happen before anything exists.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from aws.fixtures import aws_env, moto, moto_server  # noqa: F401
from aws.faults import ERRORS, TIMEOUT, CallRecorder, Inject
from aws.motoserver import UBUNTU_AMI

CODES = ["InstanceLimitExceeded", "RequestLimitExceeded", "UnauthorizedOperation", "InsufficientInstanceCapacity",
         TIMEOUT]
MODES = {
    "on-demand": {},
    "spot": {"request_spot_instance": True, "spot_price": "0.05"},
    "elastic-ip": {"elastic_ip": "new"},
}


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    from machine.drivers.aws import AWSDriver

    monkeypatch.setattr(AWSDriver, "poll_interval", 0.02)
    monkeypatch.setattr(AWSDriver, "pending_grace", 0.3)
    monkeypatch.setattr(AWSDriver, "terminate_timeout", 10.0)


def loopback_subnet(moto) -> str:
    """A VPC whose private addresses are on loopback (127.20.0.0/26, where nothing listens): should a
    create ever get past its driver here, provisioning fails at once and nothing leaves loopback."""
    ec2 = moto.ec2()
    vpc = ec2.create_vpc(CidrBlock="127.20.0.0/24")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="127.20.0.0/26", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]


def options(moto, mode: str, subnet: str) -> dict:
    return {"endpoint_url": moto.url, "ami": UBUNTU_AMI, "subnet_id": subnet, "use_private_address": True,
            **MODES[mode]}


def driver_calls(moto, tmp_path, mode: str, subnet: str) -> list[tuple[str, int]]:
    """Every EC2 call (operation, k-th) of pre-check + create, from a successful driver-level run."""
    from machine.driver import DriverContext
    from machine.drivers.aws import AWSConfig, AWSDriver, client

    rec = CallRecorder()
    client.HOOKS.append(("before-call.ec2", rec))
    cfg = AWSConfig.from_options(options(moto, mode, subnet), driver_name="aws", machine_name="probe")
    (tmp_path / "probe").mkdir(parents=True)
    d = AWSDriver(cfg, DriverContext.scratch("probe", tmp_path / "probe", root=tmp_path / "scratch"))
    d.pre_create_check()
    d.create()
    client.HOOKS.remove(("before-call.ec2", rec))
    rec.on = False
    d.remove()
    left = moto.leftovers()
    assert set(left) <= {"security_groups"} and all(g != "machine" for g in left.get("security_groups", [])), left
    return rec.occurrences()


@pytest.mark.parametrize("mode", list(MODES))
def test_every_call_of_create_fails_cleanly(mode, moto, tmp_path, store_path):
    from machine.api import Machines
    from machine.drivers.aws import client
    from machine.errors import MachineError

    subnet = loopback_subnet(moto)
    calls = driver_calls(moto, tmp_path, mode, subnet)
    ops = {op for op, _ in calls}
    assert {"RunInstances", "ImportKeyPair", "CreateSecurityGroup", "DescribeInstances"} <= ops
    if mode == "spot":
        assert "RequestSpotInstances" in ops
    if mode == "elastic-ip":
        assert {"AllocateAddress", "AssociateAddress"} <= ops
    if mode != "on-demand":   # the calls every create makes are covered by the on-demand case
        common = set(driver_calls(moto, tmp_path / "od", "on-demand", subnet))
        calls = [c for c in calls if c not in common]
    api = Machines(store_path)
    failures = []
    for op, k in calls:
        for code in CODES:
            inj = Inject(op, k, code)
            client.HOOKS.append(("before-call.ec2", inj))
            try:
                api.create("f1", "aws", options(moto, mode, subnet), ssh_deadline_s=1)
                failures.append(f"{op}#{k} {code}: create succeeded (fired: {inj.fired})")
                api.rm("f1", force=True)
                continue
            except MachineError as e:
                info = SimpleNamespace(value=e)
            finally:
                client.HOOKS.remove(("before-call.ec2", inj))
            if not inj.fired:
                failures.append(f"{op}#{k} {code}: not fired; {info.value}")
            line = str(info.value).splitlines()[0]
            want = "RequestTimeout" if code == TIMEOUT else code
            if want not in line or "\n" in str(info.value):
                failures.append(f"{op}#{k} {code}: message {str(info.value)!r}")
            left = moto.leftovers()
            if left.get("security_groups") == ["default"]:
                left.pop("security_groups")
            if left:
                failures.append(f"{op}#{k} {code}: left {left}")
                break
            if api.store.exists("f1"):
                failures.append(f"{op}#{k} {code}: record kept")
                api.rm("f1", force=True)
    assert not failures, "\n".join(failures)


def test_pre_create_check_errors_create_nothing(moto, store_path):
    """Bad credentials, unknown AMI, unknown type, zone not in region, quota: one line, nothing made."""
    from machine.api import Machines
    from machine.drivers.aws import client
    from machine.errors import MachineError

    api = Machines(store_path)
    cases = [
        ({"ami": "ami-0123456789abcdef0"}, None, "InvalidAMIID.NotFound"),
        ({"instance_type": "t9.mega"}, None, "InvalidInstanceType"),
        ({"zone": "eu-west-1a"}, None, "InvalidZone.NotFound"),
        ({}, Inject("DescribeAvailabilityZones", 0, "AuthFailure"), "AuthFailure"),
        ({}, Inject("RunInstances", 0, "InstanceLimitExceeded"), "InstanceLimitExceeded"),   # the dry run
        ({}, Inject("RunInstances", 0, "UnauthorizedOperation"), "UnauthorizedOperation"),
    ]
    for opts, inj, code in cases:
        moto.calls.clear()
        if inj:
            client.HOOKS.append(("before-call.ec2", inj))
        try:
            with pytest.raises(MachineError) as info:
                api.create("pc", "aws", {"endpoint_url": moto.url, "ami": UBUNTU_AMI, **opts})
        finally:
            if inj:
                client.HOOKS.remove(("before-call.ec2", inj))
        msg = str(info.value)
        assert code in msg.splitlines()[0] and "\n" not in msg, msg
        assert not [c for c in moto.calls if not c.startswith("Describe")], moto.calls   # nothing made
        assert moto.leftovers() == {} and not api.store.exists("pc")


def test_bad_credentials_from_the_chain(moto, store_path, monkeypatch):
    """No credentials anywhere in boto3's chain: a usage error before any call."""
    from machine.api import Machines
    from machine.errors import MachineError

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MachineError) as info:
        Machines(store_path).create("nc", "aws", {"endpoint_url": moto.url, "ami": UBUNTU_AMI})
    assert "no AWS credentials" in str(info.value)
    assert moto.leftovers() == {}


def test_cli_prints_one_line_with_the_code(moto, cli):
    from machine.drivers.aws import client

    inj = Inject("RunInstances", 1, "InsufficientInstanceCapacity")
    client.HOOKS.append(("before-call.ec2", inj))
    r = cli("create", "-d", "amazonec2", "--amazonec2-endpoint", moto.url, "--amazonec2-ami", UBUNTU_AMI, "c1")
    assert r.code == 1, r
    errors = [l for l in r.err.splitlines() if "InsufficientInstanceCapacity" in l]
    assert len(errors) == 1, r.err
    assert moto.leftovers() == {}
