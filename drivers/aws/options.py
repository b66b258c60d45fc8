"""The aws driver's typed configuration: docker-machine's amazonec2 flags kept as hidden aliases.

Our flags are `--aws-<name>`; every `--amazonec2-*` flag of docker-machine 0.16.2, and the GitLab
fork's additions (metadata token, hop limit, spot and block duration, EBS encryption and KMS
key), is accepted as a hidden alias with the config.json key docker-machine wrote, so a GitLab
Runner `MachineOptions` list or an old loop runs unchanged and an old store stays readable.

Credentials come from boto3's own chain (env, shared files and profiles, SSO, instance role) and
are never copied. `--amazonec2-access-key/-secret-key/-session-token` typed on the command line
are `secret` settings: the core keeps them in the keyring or the machine's 0600 credentials file,
never in config.json. They have no env var on purpose: AWS_ACCESS_KEY_ID and friends are boto3's
to read, at use.
"""
from __future__ import annotations

import os
import re

from ...driver import DriverConfig, setting
from ...errors import UsageError

DEFAULT_REGION = "us-east-1"        # docker-machine's default when nothing else names one
DEFAULT_ZONE = "a"
DEFAULT_INSTANCE_TYPE = "t3.micro"
DEFAULT_ROOT_SIZE = 16              # GiB, docker-machine's default
DEFAULT_VOLUME_TYPE = "gp3"
DEFAULT_SSH_USER = "ubuntu"         # docker-machine's default (its default image was Ubuntu)
DEFAULT_SECURITY_GROUP = "machine"     # docker-machine used "docker-machine"; ours opens swarm ports only among members
DEFAULT_RETRIES = 5
DEFAULT_RUNNING_TIMEOUT = 600
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
METADATA_TOKEN = ("required", "optional")
BLOCK_DURATIONS = (0, 60, 120, 180, 240, 300, 360)

G_AWS = "AWS account and region"
G_NET = "Network"
G_INST = "Instance"
G_SSH = "SSH"
G_SPOT = "Spot"


def _a(name: str) -> str:
    return f"--amazonec2-{name}"


class AWSConfig(DriverConfig):
    # ---- account, region, endpoint ---------------------------------------------------
    access_key: str = setting("AccessKey", "", flag="access-key", alias=_a("access-key"), secret=True, group=G_AWS,
        help="AWS access key (default: boto3's chain: AWS_ACCESS_KEY_ID, ~/.aws, SSO, instance role)")
    secret_key: str = setting("SecretKey", "", flag="secret-key", alias=_a("secret-key"), secret=True, group=G_AWS,
        help="AWS secret key (typed keys are kept in the keyring or a 0600 file, never in config.json)")
    session_token: str = setting("SessionToken", "", flag="session-token", alias=_a("session-token"), secret=True,
        group=G_AWS, help="AWS session token for typed temporary keys")
    profile: str = setting("Profile", "", flag="profile", group=G_AWS,
        help="profile of ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE, else 'default')")
    region: str = setting("Region", "", flag="region", alias=_a("region"), env="AWS_DEFAULT_REGION", group=G_AWS,
        help=f"AWS region (default: the profile's region, else {DEFAULT_REGION})")
    endpoint_url: str = setting("Endpoint", "", flag="endpoint-url", alias=_a("endpoint"), env="AWS_ENDPOINT",
        group=G_AWS, help="EC2 endpoint URL for an EC2-compatible cloud or a test server")
    insecure_transport: bool = setting("DisableSSL", False, flag="insecure-transport",
        alias=_a("insecure-transport"), env="AWS_INSECURE_TRANSPORT", group=G_AWS,
        help="plain HTTP to --aws-endpoint-url (needs --aws-endpoint-url)")
    retries: int = setting("RetryCount", DEFAULT_RETRIES, flag="retries", alias=_a("retries"), min=-1, max=50,
        group=G_AWS, help="retries of throttled or failed API calls, with backoff (-1: none)")
    # ---- network -----------------------------------------------------------------------
    zone: str = setting("Zone", DEFAULT_ZONE, flag="zone", alias=_a("zone"), env="AWS_ZONE", group=G_NET,
        help="availability zone letter (a, b, …) or full name")
    vpc_id: str = setting("VpcId", "", flag="vpc-id", alias=_a("vpc-id"), env="AWS_VPC_ID", group=G_NET,
        help="VPC (default: the region's default VPC, or the subnet's)")
    subnet_id: str = setting("SubnetId", "", flag="subnet-id", alias=_a("subnet-id"), env="AWS_SUBNET_ID",
        group=G_NET, help="subnet (default: the VPC's default subnet in the zone)")
    security_groups: list = setting("SecurityGroupNames", [DEFAULT_SECURITY_GROUP], flag="security-group",
        alias=_a("security-group"), env="AWS_SECURITY_GROUP", group=G_NET,
        help="security group name (repeatable); one that does not exist is created with the SSH, engine "
             "and swarm rules, tagged as ours and deleted with its last machine")
    security_group_readonly: bool = setting("SecurityGroupReadOnly", False, flag="security-group-readonly",
        alias=_a("security-group-readonly"), env="AWS_SECURITY_GROUP_READONLY", group=G_NET,
        help="never add rules to existing security groups")
    open_ports: list = setting("OpenPorts", [], flag="open-port", alias=_a("open-port"), group=G_NET,
        help="also open PORT[/tcp|udp] to the world in a group we manage (repeatable)")
    private_address_only: bool = setting("PrivateIPOnly", False, flag="private-address-only",
        alias=_a("private-address-only"), group=G_NET,
        help="no public address: the machine is reached on its private address")
    use_private_address: bool = setting("UsePrivateIP", False, flag="use-private-address",
        alias=_a("use-private-address"), group=G_NET,
        help="reach the machine on its private address (it may still have a public one)")
    elastic_ip: str = setting("ElasticIP", "", flag="elastic-ip", group=G_NET,
        help="give the machine an Elastic IP: 'new' allocates one (released on rm); an address or "
             "eipalloc-… id associates one you own (kept on rm)")
    # ---- instance ------------------------------------------------------------------------
    ami: str = setting("AMI", "", flag="ami", alias=_a("ami"), env="AWS_AMI", group=G_INST,
        help="image id (default: the newest Ubuntu LTS server image of the region, looked up)")
    instance_type: str = setting("InstanceType", DEFAULT_INSTANCE_TYPE, flag="instance-type",
        alias=_a("instance-type"), env="AWS_INSTANCE_TYPE", group=G_INST, help="instance type")
    device_name: str = setting("DeviceName", "", flag="device-name", alias=_a("device-name"), env="AWS_DEVICE_NAME",
        group=G_INST, help="root device name (default: the image's)")
    root_size: int = setting("RootSize", DEFAULT_ROOT_SIZE, flag="root-size", alias=_a("root-size"),
        env="AWS_ROOT_SIZE", min=1, max=65536, group=G_INST, help="root volume size in GiB")
    volume_type: str = setting("VolumeType", DEFAULT_VOLUME_TYPE, flag="volume-type", alias=_a("volume-type"),
        env="AWS_VOLUME_TYPE", choices=VOLUME_TYPES, group=G_INST, help="root volume type")
    encrypt_ebs_volume: bool = setting("EncryptEbsVolume", False, flag="encrypt-ebs-volume",
        alias=_a("encrypt-ebs-volume"), env="AWS_ENCRYPT_EBS_VOLUME", group=G_INST,
        help="encrypt the root volume (the account's default KMS key unless --aws-kms-key)")
    kms_key: str = setting("KmsKeyId", "", flag="kms-key", alias=_a("kms-key"), env="AWS_KMS_KEY", group=G_INST,
        help="KMS key id or ARN for the root volume (implies --aws-encrypt-ebs-volume)")
    iam_instance_profile: str = setting("IamInstanceProfile", "", flag="iam-instance-profile",
        alias=_a("iam-instance-profile"), env="AWS_INSTANCE_PROFILE", group=G_INST,
        help="IAM instance profile name or ARN")
    tags: str = setting("Tags", "", flag="tags", alias=_a("tags"), env="AWS_TAGS", group=G_INST,
        help="extra tags on every resource: key1,value1,key2,value2")
    userdata: str = setting("UserDataFile", "", flag="userdata", alias=(_a("userdata"), _a("user-data")),
        env="AWS_USERDATA", group=G_INST, help="file passed as user data (cloud-init)")
    monitoring: bool = setting("Monitoring", False, flag="monitoring", alias=_a("monitoring"), group=G_INST,
        help="detailed CloudWatch monitoring")
    ebs_optimized: bool = setting("UseEbsOptimizedInstance", False, flag="use-ebs-optimized-instance",
        alias=_a("use-ebs-optimized-instance"), group=G_INST, help="EBS-optimized instance")
    metadata_token: str = setting("MetadataTokenSetting", "required", flag="metadata-token",
        alias=(_a("metadata-token"), _a("http-tokens")), choices=METADATA_TOKEN, group=G_INST,
        help="instance metadata token (IMDSv2): required or optional")
    metadata_hop_limit: int = setting("MetadataTokenResponseHopLimit", 1, flag="metadata-token-response-hop-limit",
        alias=_a("metadata-token-response-hop-limit"), min=1, max=64, group=G_INST,
        help="hops the metadata token may travel (2 for containers on the host)")
    running_timeout: int = setting("RunningTimeout", DEFAULT_RUNNING_TIMEOUT, flag="running-timeout", min=1,
        group=G_INST, help="seconds to wait for the instance to run")
    # ---- spot ------------------------------------------------------------------------------
    request_spot_instance: bool = setting("RequestSpotInstance", False, flag="request-spot-instance",
        alias=_a("request-spot-instance"), group=G_SPOT, help="request a spot instance")
    spot_price: str = setting("SpotPrice", "", flag="spot-price", alias=_a("spot-price"), group=G_SPOT,
        help="maximum spot price in USD per hour (default: the on-demand price)")
    block_duration_minutes: int = setting("BlockDurationMinutes", 0, flag="block-duration-minutes",
        alias=_a("block-duration-minutes"), choices=BLOCK_DURATIONS, group=G_SPOT,
        help="spot block duration in minutes (60…360; AWS retired spot blocks in 2022)")
    # ---- SSH -----------------------------------------------------------------------------
    ssh_user: str = setting("SSHUser", DEFAULT_SSH_USER, flag="ssh-user", alias=_a("ssh-user"), env="AWS_SSH_USER",
        group=G_SSH, help="SSH user of the image")
    ssh_port: int = setting("SSHPort", 22, flag="ssh-port", alias=_a("ssh-port"), env="AWS_SSH_PORT", min=1,
        max=65535, group=G_SSH, help="SSH port")
    ssh_keypath: str = setting("SSHPrivateKeyPath", "", flag="ssh-keypath", alias=_a("ssh-keypath"),
        env="AWS_SSH_KEYPATH", group=G_SSH,
        help="private key to use (its .pub is imported as the key pair unless --aws-keypair-name)")
    keypair_name: str = setting("KeyName", "", flag="keypair-name", alias=_a("keypair-name"), env="AWS_KEYPAIR_NAME",
        group=G_SSH, help="existing key pair (needs --aws-ssh-keypath)")
    # ---- state the driver keeps (docker-machine's fields where it had them) -----------------
    instance_id: str = setting("InstanceId", "")
    private_ip_address: str = setting("PrivateIPAddress", "")
    security_group_ids: list = setting("SecurityGroupIds", [])
    existing_key: bool = setting("ExistingKey", False)
    spot_request_id: str = setting("SpotInstanceRequestId", "")

    def validate(self, driver_name: str) -> None:
        """docker-machine's checks on the flags, plus ours."""
        f = f"--{driver_name}-"
        if self.insecure_transport and not self.endpoint_url:
            raise UsageError(f"{f}insecure-transport needs {f}endpoint-url", f"pass {f}endpoint-url URL")
        if self.endpoint_url and any(c.isspace() for c in self.endpoint_url):
            raise UsageError(f"invalid {f}endpoint-url {self.endpoint_url!r}", "give http(s)://HOST[:PORT]")
        if self.keypair_name and not self.ssh_keypath:
            raise UsageError(f"using {f}keypair-name also requires {f}ssh-keypath",
                             f"pass {f}ssh-keypath with the key pair's private key")
        for path, flag in ((self.ssh_keypath, "ssh-keypath"), (self.userdata, "userdata")):
            if path and not os.path.isfile(os.path.expanduser(path)):
                raise UsageError(f"{f}{flag} {path}: no such file", "give the path of an existing file")
        if self.ssh_keypath and not self.keypair_name \
                and not os.path.isfile(os.path.expanduser(self.ssh_keypath) + ".pub"):
            raise UsageError(f"{f}ssh-keypath {self.ssh_keypath}: its public key {self.ssh_keypath}.pub is missing",
                             f"put the public key next to it, or pass {f}keypair-name of a key pair in AWS")
        if self.private_address_only and self.elastic_ip:
            raise UsageError(f"{f}private-address-only and {f}elastic-ip exclude each other", "drop one")
        if self.block_duration_minutes and not self.request_spot_instance:
            raise UsageError(f"{f}block-duration-minutes needs {f}request-spot-instance", "add it, or drop the duration")
        if self.spot_price:
            try:
                if float(self.spot_price) <= 0:
                    raise ValueError
            except ValueError:
                raise UsageError(f"invalid {f}spot-price {self.spot_price!r}", "give a price in USD, e.g. 0.05") from None
        if not re.fullmatch(r"[a-z0-9.\-]+", self.instance_type or ""):
            raise UsageError(f"invalid {f}instance-type {self.instance_type!r}", "e.g. t3.micro")
        if self.ami and not re.fullmatch(r"ami-[0-9a-f]{8,17}", self.ami):
            raise UsageError(f"invalid {f}ami {self.ami!r}", "give an image id: ami- and 8 or 17 hex digits")
        if self.region and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", self.region) and not self.endpoint_url:
            raise UsageError(f"invalid {f}region {self.region!r}", "e.g. us-east-1, eu-west-3")
        if self.zone and not re.fullmatch(r"[a-z]|[a-z]{2}(-[a-z]+)+-\d+[a-z]", self.zone):
            raise UsageError(f"invalid {f}zone {self.zone!r}", "give the zone letter (a, b, …) or its full name")
        parse_tags(self.tags, driver_name)
        for p in self.open_ports:
            parse_port(p, driver_name)
        if self.elastic_ip and self.elastic_ip != "new" and not (
                re.fullmatch(r"eipalloc-[0-9a-f]+", self.elastic_ip) or _is_ipv4(self.elastic_ip)):
            raise UsageError(f"invalid {f}elastic-ip {self.elastic_ip!r}",
                             "give 'new', an Elastic IP address, or its eipalloc-… id")
        if self.kms_key:
            self.encrypt_ebs_volume = True

    # ---- derived -------------------------------------------------------------------------
    def zone_name(self, region: str) -> str:
        z = self.zone or DEFAULT_ZONE
        return z if len(z) > 1 else region + z


def _is_ipv4(s: str) -> bool:
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(s), ipaddress.IPv4Address)
    except ValueError:
        return False


def parse_tags(text: str, driver_name: str = "aws") -> dict[str, str]:
    """docker-machine's `key1,value1,key2,value2` -> {key1: value1, key2: value2}."""
    if not text:
        return {}
    parts = [p.strip() for p in text.split(",")]
    if len(parts) % 2:
        raise UsageError(f"invalid --{driver_name}-tags {text!r}: an odd number of items",
                         "write key1,value1,key2,value2")
    out = {}
    for k, v in zip(parts[::2], parts[1::2]):
        if not k or k.lower().startswith("aws:"):
            raise UsageError(f"invalid --{driver_name}-tags key {k!r}", "keys may not be empty or start with aws:")
        out[k] = v
    return out


def parse_port(text: str, driver_name: str = "aws") -> tuple[int, str]:
    """`8080`, `8080/tcp`, `53/udp` -> (port, protocol)."""
    port, _, proto = str(text).partition("/")
    proto = (proto or "tcp").lower()
    try:
        n = int(port)
    except ValueError:
        n = 0
    if not 1 <= n <= 65535 or proto not in ("tcp", "udp"):
        raise UsageError(f"invalid --{driver_name}-open-port {text!r}", "give PORT, PORT/tcp or PORT/udp")
    return n, proto
