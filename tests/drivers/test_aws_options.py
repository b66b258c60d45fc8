"""The aws driver's configuration: docker-machine's amazonec2 flags, config.json keys, checks.

No AWS here: these are the typed config and the CLI's view of it (moto tests are in
test_aws_lifecycle.py and tests/aws/)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from machine.drivers.aws import AWSDriver
from machine.drivers.aws.options import AWSConfig, parse_port, parse_tags
from machine.errors import UsageError

# every create flag of docker-machine 0.16.2's amazonec2 driver, plus the GitLab fork's additions
DOCKER_MACHINE_FLAGS = """access-key secret-key session-token ami region vpc-id zone subnet-id security-group-readonly
security-group open-port tags instance-type device-name root-size volume-type iam-instance-profile ssh-port ssh-user
request-spot-instance spot-price block-duration-minutes private-address-only use-private-address monitoring
use-ebs-optimized-instance ssh-keypath keypair-name retries endpoint insecure-transport userdata
metadata-token metadata-token-response-hop-limit encrypt-ebs-volume kms-key""".split()


def opts(**kw):
    return AWSConfig.from_options(kw, driver_name="aws", machine_name="m", environ={})


def test_every_docker_machine_flag_is_an_alias():
    aliases = {a for s in AWSConfig.options() for a in s.aliases}
    missing = [f for f in DOCKER_MACHINE_FLAGS if f"--amazonec2-{f}" not in aliases]
    assert not missing
    assert all(s.cli_flag("aws").startswith("--aws-") for s in AWSConfig.options())


def test_config_json_keys_are_docker_machines_and_secrets_stay_out():
    c = opts(access_key="AKIAEXAMPLE", secret_key="s3cr3t", instance_type="t3.small", region="eu-west-3",
             security_group=["a", "b"], tags="k,v")
    c.instance_id, c.private_ip_address = "i-0123456789abcdef0", "10.0.0.5"
    rec = c.to_record()
    assert rec["InstanceType"] == "t3.small" and rec["Region"] == "eu-west-3"
    assert rec["SecurityGroupNames"] == ["a", "b"] and rec["Tags"] == "k,v"
    assert rec["InstanceId"] == "i-0123456789abcdef0" and rec["PrivateIPAddress"] == "10.0.0.5"
    assert "AccessKey" not in rec and "SecretKey" not in rec and "s3cr3t" not in repr(rec)
    assert c.secrets() == {"AccessKey": "AKIAEXAMPLE", "SecretKey": "s3cr3t"}


def test_reads_a_docker_machine_record():
    rec = {"IPAddress": "54.1.2.3", "MachineName": "dm", "SSHUser": "ubuntu", "SSHPort": 22,
           "SSHKeyPath": "/s/machines/dm/id_rsa", "StorePath": "/s", "Id": "abc", "AccessKey": "", "SecretKey": "",
           "SessionToken": "", "Region": "us-east-1", "AMI": "ami-5f709f34", "SSHKeyID": 0, "ExistingKey": False,
           "KeyName": "dm", "InstanceId": "i-0aa", "InstanceType": "t2.micro", "PrivateIPAddress": "172.31.1.2",
           "SecurityGroupId": "", "SecurityGroupIds": ["sg-1"], "SecurityGroupName": "",
           "SecurityGroupNames": ["docker-machine"], "SecurityGroupReadOnly": False, "OpenPorts": None,
           "Tags": "", "ReservationId": "", "DeviceName": "/dev/sda1", "RootSize": 16, "VolumeType": "gp2",
           "IamInstanceProfile": "", "VpcId": "vpc-1", "SubnetId": "subnet-1", "Zone": "a",
           "RequestSpotInstance": False, "SpotPrice": "0.50", "BlockDurationMinutes": 0, "PrivateIPOnly": False,
           "UsePrivateIP": False, "UseEbsOptimizedInstance": False, "Monitoring": False, "SSHPrivateKeyPath": "",
           "RetryCount": 5, "Endpoint": "", "DisableSSL": False, "UserDataFile": ""}
    c = AWSConfig.from_record(rec)
    assert c.instance_id == "i-0aa" and c.keypair_name == "dm" and c.security_group_ids == ["sg-1"]
    assert c.extra["Id"] == "abc" and c.extra["ReservationId"] == ""
    back = c.to_record()
    assert back["InstanceId"] == "i-0aa" and back["Id"] == "abc" and back["SpotPrice"] == "0.50"


@pytest.mark.parametrize("kw,needle", [
    ({"insecure_transport": True}, "insecure-transport needs"),
    ({"keypair_name": "k"}, "requires --aws-ssh-keypath"),
    ({"tags": "a,b,c"}, "odd number"),
    ({"tags": "aws:x,1"}, "aws:"),
    ({"open_port": ["70000"]}, "open-port"),
    ({"block_duration_minutes": 60}, "needs --aws-request-spot-instance"),
    ({"spot_price": "cheap", "request_spot_instance": True}, "spot-price"),
    ({"ami": "ubuntu"}, "ami"),
    ({"zone": "Z"}, "zone"),
    ({"elastic_ip": "somewhere"}, "elastic-ip"),
    ({"private_address_only": True, "elastic_ip": "new"}, "exclude"),
    ({"metadata_token": "sometimes"}, "required, optional"),
    ({"volume_type": "floppy"}, "gp3"),
    ({"ssh_keypath": "/nonexistent/key"}, "no such file"),
])
def test_bad_input_is_a_usage_error_naming_the_flag(kw, needle):
    with pytest.raises(UsageError) as info:
        opts(**kw)
    assert needle in str(info.value)


def test_defaults_and_derived():
    c = opts()
    assert c.metadata_token == "required" and c.metadata_hop_limit == 1       # IMDSv2 by default
    assert c.security_groups == ["machine"] and c.ssh_user == "ubuntu" and c.root_size == 16
    assert c.zone_name("eu-west-3") == "eu-west-3a"
    assert opts(kms_key="alias/k").encrypt_ebs_volume
    assert parse_tags("a,1, b ,2") == {"a": "1", "b": "2"}
    assert parse_port("53/udp") == (53, "udp") and parse_port("8080") == (8080, "tcp")


def test_env_vars_of_docker_machine():
    c = AWSConfig.from_options({}, driver_name="aws", machine_name="m",
                               environ={"AWS_DEFAULT_REGION": "eu-west-1", "AWS_INSTANCE_TYPE": "m5.large",
                                        "AWS_SECURITY_GROUP": "a,b", "AWS_ACCESS_KEY_ID": "AKIA"})
    assert c.region == "eu-west-1" and c.instance_type == "m5.large" and c.security_groups == ["a", "b"]
    assert c.access_key == ""   # boto3's chain reads AWS_ACCESS_KEY_ID itself; never copied into the record


def test_help_shows_aws_flags_only(cli):
    r = cli("create", "-d", "amazonec2", "--help")
    assert r.code == 0
    assert "--aws-instance-type" in r.out and "--aws-metadata-token" in r.out
    assert "--amazonec2-" not in r.out


def test_importing_the_driver_does_not_import_boto3():
    code = ("import sys; import machine.drivers.aws as a; a.AWSConfig.from_record({'Region': 'x'}); "
            "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_capabilities():
    assert AWSDriver.capabilities.cloud and AWSDriver.capabilities.private_network
