"""The aws driver against moto's server on 127.0.0.1 (real boto3 over HTTP): create, power, rm.

Driver level (no SSH: moto's instances are records, their addresses lead nowhere); the full
`machine create` with provisioning runs in tests/e2e/test_aws_e2e.py.
"""
from __future__ import annotations

import pytest

from aws.fixtures import aws_env, fast, make_driver, moto, moto_server  # noqa: F401
from aws.motoserver import UBUNTU_AMI

from machine.model import State


def test_full_lifecycle_leaves_nothing(make_driver, moto):
    d = make_driver("life")
    d.pre_create_check()
    assert moto.leftovers() == {}, "the pre-create check created something"
    d.create()
    c = d.config
    assert c.instance_id.startswith("i-") and c.ip_address and c.private_ip_address
    assert c.ssh_key_path.endswith("id_rsa") and c.keypair_name.startswith("life-")
    kinds = sorted({e["kind"] for e in d.journal})
    assert kinds == ["instance", "key_pair", "security_group", "volume"], d.journal.entries
    assert not any(e.get("pending") for e in d.journal)
    assert d.state() == State.RUNNING and d.stopped_reason() is None

    ec2 = moto.ec2()
    inst = ec2.describe_instances(InstanceIds=[c.instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["Name"] == "life" and tags["machine:name"] == "life" and tags["machine:token"]
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["KeyName"] == c.keypair_name
    vol = ec2.describe_volumes()["Volumes"][0]
    assert {t["Key"]: t["Value"] for t in vol["Tags"]}["machine:token"] == tags["machine:token"]
    group = ec2.describe_security_groups(GroupNames=["machine"])["SecurityGroups"][0]
    world = {(p["IpProtocol"], p["FromPort"]) for p in group["IpPermissions"] if p.get("IpRanges")}
    members = {(p["IpProtocol"], p["FromPort"]) for p in group["IpPermissions"] if p.get("UserIdGroupPairs")}
    assert world == {("tcp", 22), ("tcp", 2376)}
    assert members == {("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)}

    d.stop()
    assert d.state() == State.STOPPED
    d.start()
    assert d.state() == State.RUNNING
    d.restart()
    assert d.state() == State.RUNNING
    d.kill()
    assert d.state() == State.STOPPED
    assert d.stopped_reason() == f"instance {c.instance_id} is stopped"  # a create waiting for SSH stops now
    d.remove()
    assert moto.leftovers() == {}
    assert len(d.journal) == 0
    d.remove()   # idempotent


def test_rm_is_idempotent_when_resources_vanished(make_driver, moto):
    d = make_driver("gone")
    d.create()
    ec2 = moto.ec2()
    ec2.terminate_instances(InstanceIds=[d.config.instance_id])
    assert d.stopped_reason() in (f"instance {d.config.instance_id} is terminated",
                                  f"instance {d.config.instance_id} is shutting-down")
    ec2.delete_key_pair(KeyName=d.config.keypair_name)
    d.remove()
    assert moto.leftovers() == {}


def test_shared_group_is_deleted_with_its_last_machine(make_driver, moto):
    a, b = make_driver("ga"), make_driver("gb")
    a.create()
    b.create()
    assert a.config.security_group_ids == b.config.security_group_ids
    a.remove()
    assert moto.leftovers().get("security_groups") == ["machine"]
    b.remove()
    assert moto.leftovers() == {}


def test_existing_group_of_the_user_is_kept_and_readonly(make_driver, moto):
    ec2 = moto.ec2()
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    gid = ec2.create_security_group(GroupName="runners", Description="mine", VpcId=vpc)["GroupId"]
    d = make_driver("ro", security_group=["runners"], security_group_readonly=True)
    d.create()
    assert d.config.security_group_ids == [gid]
    assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
    d.remove()
    assert moto.leftovers() == {"security_groups": ["runners"]}


def test_spot_instance(make_driver, moto):
    d = make_driver("spot", request_spot_instance=True, spot_price="0.05")
    d.create()
    assert d.config.spot_request_id.startswith("sir-")
    kinds = [e["kind"] for e in d.journal]
    assert "spot_request" in kinds and "instance" in kinds
    inst = moto.ec2().describe_instances(InstanceIds=[d.config.instance_id])["Reservations"][0]["Instances"][0]
    assert {t["Key"] for t in inst["Tags"]} >= {"Name", "machine:name", "machine:token"}
    d.remove()
    assert moto.leftovers() == {}


def test_new_elastic_ip_is_released_and_owned_one_kept(make_driver, moto):
    d = make_driver("eip", elastic_ip="new")
    d.create()
    assert d.config.ip_address == moto.ec2().describe_addresses()["Addresses"][0]["PublicIp"]
    d.remove()
    assert moto.leftovers() == {}

    ec2 = moto.ec2()
    alloc = ec2.allocate_address(Domain="vpc", Address="127.20.0.250")
    d2 = make_driver("eip2", elastic_ip="127.20.0.250")
    d2.create()
    assert d2.config.ip_address == "127.20.0.250"
    d2.remove()
    left = ec2.describe_addresses()["Addresses"]
    assert [a["AllocationId"] for a in left] == [alloc["AllocationId"]] and not left[0].get("AssociationId")


def test_options_reach_run_instances(make_driver, moto, tmp_path):
    ud = tmp_path / "user-data"
    ud.write_text("#cloud-config\n")
    d = make_driver("opts", instance_type="t3.small", root_size=30, volume_type="gp2", kms_key="alias/mine",
                    tags="team,ci,cost,42", userdata=str(ud), metadata_token="optional",
                    metadata_token_response_hop_limit=2, private_address_only=True, monitoring=True)
    d.create()
    inst = moto.ec2().describe_instances(InstanceIds=[d.config.instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["team"] == "ci" and tags["cost"] == "42"
    assert inst["InstanceType"] == "t3.small"
    assert inst["MetadataOptions"]["HttpTokens"] == "optional"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert not inst.get("PublicIpAddress")
    assert d.config.ip_address == inst["PrivateIpAddress"]
    vol = moto.ec2().describe_volumes()["Volumes"][0]
    assert vol["Size"] == 30 and vol["Encrypted"]
    d.remove()
    assert moto.leftovers() == {}


def test_default_image_is_looked_up(make_driver, moto):
    d = make_driver("img", ami="")
    d.pre_create_check()
    img = moto.ec2().describe_images(ImageIds=[d.config.ami])["Images"][0]
    assert img["OwnerId"] == "099720109477" and "ubuntu" in img["Name"]
    assert d.config.ami != "" and moto.leftovers() == {}


def test_batch_states_one_call_per_region(make_driver, moto):
    ds = [make_driver(f"b{i}") for i in range(3)]
    for d in ds:
        d.create()
    ds[1].stop()
    moto.calls.clear()
    fresh = [make_driver(d.machine_name) for d in ds]
    for f, d in zip(fresh, ds):
        f.config.instance_id = d.config.instance_id
        f.config.region = d.config.region
    states = type(ds[0]).batch_states(fresh)
    assert states == {"b0": State.RUNNING, "b1": State.STOPPED, "b2": State.RUNNING}
    assert moto.calls == ["DescribeInstances"]
    for d in ds:
        d.remove()


def test_ls_retries_throttling_with_backoff(make_driver, moto):
    """Two throttled answers (HTTP 503 RequestLimitExceeded, as EC2 sends them), then the batch succeeds."""
    from botocore.awsrequest import AWSResponse

    from machine.drivers.aws import AWSDriver, client

    d = make_driver("thr")
    d.create()
    body = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
            b"</Message></Error></Errors><RequestID>x</RequestID></Response>")

    class Raw:
        def stream(self, **kw):
            yield body

    sent = []

    def throttle(request=None, **kw):
        sent.append(request.url)
        if len(sent) <= 2:
            return AWSResponse(request.url, 503, {}, Raw())
        return None

    client.HOOKS.append(("before-send.ec2.DescribeInstances", throttle))
    fresh = make_driver("thr")
    fresh.config.instance_id, fresh.config.region = d.config.instance_id, d.config.region
    assert AWSDriver.batch_states([fresh]) == {"thr": State.RUNNING}
    assert len(sent) == 3
    client.HOOKS.clear()
    d.remove()


def test_rm_of_a_docker_machine_record_without_journal(make_driver, moto):
    d = make_driver("legacy")
    d.create()
    old = make_driver("legacy")
    for f in ("instance_id", "keypair_name", "region"):
        setattr(old.config, f, getattr(d.config, f))
    assert len(old.journal) == 0
    old.remove()
    left = moto.leftovers()
    assert "instances" not in left and "key_pairs" not in left, left


def test_credentials_from_a_profile_and_typed_keys(make_driver, moto, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    creds = tmp_path / "credentials"
    creds.write_text("[ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    conf = tmp_path / "config"
    conf.write_text("[profile ci]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    d = make_driver("prof", profile="ci")
    d.pre_create_check()
    assert d.config.region == "us-east-1"          # the profile's region
    typed = make_driver("typed", access_key="testing", secret_key="testing", region="us-east-1")
    typed.pre_create_check()
    assert "AccessKey" not in typed.config.to_record()
    from machine.errors import UsageError

    with pytest.raises(UsageError):
        make_driver("nope", profile="missing").pre_create_check()
    assert moto.leftovers() == {}
