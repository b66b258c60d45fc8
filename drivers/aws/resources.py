"""EC2 look-ups and resource calls of the aws driver, one small function each (client passed in).

Deletions are idempotent: a resource AWS no longer knows is not an error (`gone`).
"""
from __future__ import annotations

import re
import time

from .errors import AWSError, is_missing, translate

TAG_NAME = "machine:name"        # the machine the resource belongs to
TAG_TOKEN = "machine:token"      # the create that made it (records keep it in their journal)
TAG_MANAGED = "machine:managed"  # a shared security group we made (deleted with its last machine)

CANONICAL = "099720109477"       # Canonical's account: Ubuntu images
DEBIAN = "136693071363"          # Debian's account: Debian images
UBUNTU_NAMES = ["ubuntu/images/hvm-ssd*/ubuntu-*-server-*"]
SWARM_RULES = [("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)]


def tag_list(tags: dict) -> list[dict]:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def tag_specs(types: list[str], tags: dict) -> list[dict]:
    return [{"ResourceType": t, "Tags": tag_list(tags)} for t in types]


def tags_of(resource: dict) -> dict:
    return {t["Key"]: t.get("Value", "") for t in resource.get("Tags") or []}


def gone(fn, *a, **kw) -> bool:
    """Call a delete; True if it deleted, False if the resource was already gone."""
    from botocore.exceptions import ClientError

    try:
        fn(*a, **kw)
        return True
    except ClientError as e:
        if is_missing(e):
            return False
        raise


# ---- look-ups (pre-create check) ---------------------------------------------------------

def default_vpc(ec2) -> str | None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"] if vpcs else None


def subnet_by_id(ec2, subnet_id: str) -> dict:
    return ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]


def subnet_in_zone(ec2, vpc_id: str, zone: str) -> dict | None:
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                            {"Name": "availability-zone", "Values": [zone]}])["Subnets"]
    subnets.sort(key=lambda s: (not s.get("DefaultForAz"), s["SubnetId"]))
    return subnets[0] if subnets else None


def zone_exists(ec2, zone: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        zones = ec2.describe_availability_zones(ZoneNames=[zone])["AvailabilityZones"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("InvalidParameterValue", "InvalidZone.NotFound"):
            return False
        raise
    return any(z.get("ZoneName") == zone for z in zones)


def instance_type_info(ec2, instance_type: str) -> dict:
    types = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    if not types:
        raise AWSError(f"check the instance type: InvalidInstanceType: {instance_type} is not offered here",
                       "pass an instance type this region offers with --aws-instance-type", "InvalidInstanceType")
    return types[0]


def image(ec2, ami: str) -> dict:
    images = ec2.describe_images(ImageIds=[ami])["Images"]
    if not images:
        raise AWSError(f"look up the image: InvalidAMIID.NotFound: the image id '{ami}' does not exist",
                       "pass an image of this region with --aws-ami (ids differ per region)", "InvalidAMIID.NotFound")
    return images[0]


def _ubuntu_version(name: str) -> tuple:
    m = re.search(r"-(\d{2})\.(\d{2})-", name)
    if not m:
        return (0, 0, 0)
    major, minor = int(m.group(1)), int(m.group(2))
    lts = minor == 4 and major % 2 == 0
    return (int(lts), major, minor)


def newest_ubuntu(ec2, architecture: str = "x86_64") -> dict | None:
    """The newest Ubuntu LTS server image of the region (Canonical's), by release then date."""
    images = ec2.describe_images(Owners=[CANONICAL], Filters=[
        {"Name": "name", "Values": UBUNTU_NAMES}, {"Name": "architecture", "Values": [architecture]},
        {"Name": "state", "Values": ["available"]}, {"Name": "root-device-type", "Values": ["ebs"]}])["Images"]
    images = [i for i in images if "minimal" not in i.get("Name", "") and "pro-" not in i.get("Name", "")]
    if not images:
        return None
    return max(images, key=lambda i: (_ubuntu_version(i.get("Name", "")), i.get("CreationDate") or "", i["ImageId"]))


def key_pair_exists(ec2, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        return bool(ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"])
    except ClientError as e:
        if is_missing(e):
            return False
        raise


def dry_run(ec2, **params) -> None:
    """RunInstances with DryRun: permissions (and, on AWS, limits) checked, nothing started."""
    from botocore.exceptions import ClientError

    try:
        ec2.run_instances(DryRun=True, MinCount=1, MaxCount=1, **params)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "DryRunOperation":
            return
        raise


# ---- security groups ---------------------------------------------------------------------

def groups_by_name(ec2, vpc_id: str, names: list[str]) -> dict[str, dict]:
    if not names:
        return {}
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": list(names)}])["SecurityGroups"]
    return {g["GroupName"]: g for g in found}


def create_group(ec2, name: str, vpc_id: str, tags: dict) -> str:
    return ec2.create_security_group(
        GroupName=name, Description=f"machine: SSH and Docker engine (TLS); swarm among members", VpcId=vpc_id,
        TagSpecifications=tag_specs(["security-group"], tags))["GroupId"]


def missing_rules(group: dict, ssh_port: int, engine_port: int, open_ports: list[tuple[int, str]],
                  swarm: bool) -> list[dict]:
    """The ingress rules to add: SSH, engine and --open-port from anywhere; swarm only among members."""
    have_world, have_self = set(), set()
    gid = group["GroupId"]
    for p in group.get("IpPermissions") or []:
        proto = p.get("IpProtocol")
        for port in range(int(p.get("FromPort") or 0), int(p.get("ToPort") or 0) + 1):
            if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges") or []) or proto == "-1":
                have_world.add((proto, port))
            if any(u.get("GroupId") == gid for u in p.get("UserIdGroupPairs") or []):
                have_self.add((proto, port))
    perms = []
    for port, proto in [(ssh_port, "tcp"), (engine_port, "tcp")] + list(open_ports):
        if (proto, port) not in have_world and not any(x["FromPort"] == port and x["IpProtocol"] == proto
                                                       for x in perms):
            perms.append({"IpProtocol": proto, "FromPort": port, "ToPort": port,
                          "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "machine"}]})
    if swarm:
        for proto, port in SWARM_RULES:
            if (proto, port) not in have_self and (proto, port) not in have_world:
                perms.append({"IpProtocol": proto, "FromPort": port, "ToPort": port,
                              "UserIdGroupPairs": [{"GroupId": gid, "Description": "machine swarm"}]})
    return perms


def authorize(ec2, group_id: str, perms: list[dict]) -> None:
    from botocore.exceptions import ClientError

    if not perms:
        return
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=perms)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
            raise
        for p in perms:  # a peer added some meanwhile: add the rest one by one
            try:
                ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[p])
            except ClientError as e2:
                if e2.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
                    raise


# ---- instances -----------------------------------------------------------------------------

def describe_instance(ec2, instance_id: str) -> dict | None:
    res = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Reservations"]
    for r in res:
        for i in r["Instances"]:
            return i
    return None


def instances_by_tag(ec2, key: str, values: list[str], live_only: bool = True) -> list[dict]:
    filters = [{"Name": f"tag:{key}", "Values": list(values)}]
    if live_only:
        filters.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]})
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for r in page["Reservations"]:
            out += r["Instances"]
    return out


def wait_instance(ec2, instance_id: str, want: str, timeout: float, interval: float, on_poll=None) -> dict:
    deadline = time.monotonic() + timeout
    state = "?"
    while True:
        with translate(f"wait for instance {instance_id} to be {want}"):
            inst = describe_instance(ec2, instance_id)
        if inst is not None:
            if on_poll:
                on_poll(inst)
            state = inst["State"]["Name"]
            if state == want:
                return inst
            if want == "running" and state in ("terminated", "shutting-down"):
                reason = (inst.get("StateReason") or {}).get("Message") or inst.get("StateTransitionReason") or ""
                raise AWSError(f"instance {instance_id} went to {state} while starting: {reason or 'no reason given'}",
                               "check the image, instance type and account limits", "InstanceTerminated")
        if time.monotonic() >= deadline:
            raise AWSError(f"wait for instance {instance_id}: RequestTimeout: still {state} after {timeout:.0f}s",
                           "raise --aws-running-timeout, or look at the instance in the console", "RequestTimeout")
        time.sleep(interval)


def wait_spot(ec2, request_id: str, timeout: float, interval: float) -> str:
    """The instance id of a fulfilled spot request (raise if AWS closes or fails it)."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    status = "?"
    while True:
        try:
            reqs = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])["SpotInstanceRequests"]
        except ClientError as e:  # eventual consistency: a fresh request may not be visible yet
            if e.response.get("Error", {}).get("Code") != "InvalidSpotInstanceRequestID.NotFound":
                raise
            reqs = []
        if reqs:
            r = reqs[0]
            status = (r.get("Status") or {}).get("Code") or r.get("State") or "?"
            if r.get("InstanceId"):
                return r["InstanceId"]
            if r.get("State") in ("failed", "cancelled", "closed"):
                msg = (r.get("Status") or {}).get("Message") or ""
                raise AWSError(f"spot request {request_id}: {status}: {msg or r.get('State')}",
                               "raise --aws-spot-price, or try another --aws-instance-type or --aws-zone", status)
        if time.monotonic() >= deadline:
            raise AWSError(f"wait for spot request {request_id}: RequestTimeout: still {status} after {timeout:.0f}s",
                           "raise --aws-spot-price or --aws-running-timeout", "RequestTimeout")
        time.sleep(interval)


def terminate(ec2, instance_id: str) -> bool:
    return gone(ec2.terminate_instances, InstanceIds=[instance_id])


def wait_terminated(ec2, instance_id: str, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inst = describe_instance(ec2, instance_id)
        if inst is None or inst["State"]["Name"] == "terminated":
            return
        time.sleep(interval)


# ---- addresses ---------------------------------------------------------------------------------

def find_address(ec2, value: str) -> dict | None:
    """An Elastic IP by address or allocation id."""
    from botocore.exceptions import ClientError

    kw = {"AllocationIds": [value]} if value.startswith("eipalloc-") else {"PublicIps": [value]}
    try:
        addrs = ec2.describe_addresses(**kw)["Addresses"]
    except ClientError as e:
        if is_missing(e) or e.response.get("Error", {}).get("Code") == "InvalidAddress.NotFound":
            return None
        raise
    return addrs[0] if addrs else None
