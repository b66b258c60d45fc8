"""Find what creates left in AWS with no record: resources tagged with a create token no record knows.

Every resource the driver makes is tagged `machine:token` at creation, and every record's
journal holds its create's token, so a resource whose token no record holds was left by a
create whose record is gone (a killed process, a deleted store folder). A security group that
something still uses is never an orphan.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import resources as res
from .errors import translate

KINDS = ("instance", "spot_request", "address", "volume", "security_group", "key_pair")


@dataclass
class Orphan:
    kind: str
    id: str
    region: str
    machine: str = ""
    token: str = ""
    detail: str = ""


def known_from_records(records) -> tuple[set[str], set[str]]:
    """(tokens, resource ids) held by the journals of `records` (Host objects of any driver)."""
    tokens, ids = set(), set()
    for host in records:
        for e in getattr(host.machine, "journal", None) or []:
            if e.get("token"):
                tokens.add(e["token"])
            ids.add(str(e.get("id")))
        drv = host.driver
        for attr in ("instance_id", "spot_request_id"):
            v = getattr(drv, attr, "") or (drv.extra.get("InstanceId") if attr == "instance_id" and
                                           hasattr(drv, "extra") else "")
            if v:
                ids.add(v)
    return tokens, ids


def find(ec2, region: str, tokens: set[str], ids: set[str]) -> list[Orphan]:
    flt = [{"Name": "tag-key", "Values": [res.TAG_TOKEN]}]
    out: list[Orphan] = []

    def orphan(kind, rid, tags, detail=""):
        token = tags.get(res.TAG_TOKEN, "")
        if token in tokens or rid in ids:
            return
        out.append(Orphan(kind, rid, region, tags.get(res.TAG_NAME, ""), token, detail))

    with translate(f"list instances in {region}"):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=flt):
            for r in page["Reservations"]:
                for i in r["Instances"]:
                    if i["State"]["Name"] != "terminated":
                        orphan("instance", i["InstanceId"], res.tags_of(i), i["State"]["Name"])
    with translate(f"list spot requests in {region}"):
        for s in ec2.describe_spot_instance_requests(Filters=flt)["SpotInstanceRequests"]:
            if s.get("State") in ("open", "active"):
                orphan("spot_request", s["SpotInstanceRequestId"], res.tags_of(s), s.get("State", ""))
    with translate(f"list Elastic IPs in {region}"):
        for a in ec2.describe_addresses(Filters=flt)["Addresses"]:
            orphan("address", a["AllocationId"], res.tags_of(a), a.get("PublicIp", ""))
    with translate(f"list volumes in {region}"):
        for v in ec2.describe_volumes(Filters=flt + [{"Name": "status", "Values": ["available"]}])["Volumes"]:
            orphan("volume", v["VolumeId"], res.tags_of(v), f"{v.get('Size')} GiB")
    with translate(f"list security groups in {region}"):
        for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]:
            enis = ec2.describe_network_interfaces(
                Filters=[{"Name": "group-id", "Values": [g["GroupId"]]}])["NetworkInterfaces"]
            doomed = {o.id for o in out if o.kind == "instance"}
            used = [n for n in enis if (n.get("Attachment") or {}).get("InstanceId") not in doomed]
            if not used:
                orphan("security_group", g["GroupId"], res.tags_of(g), g.get("GroupName", ""))
    with translate(f"list key pairs in {region}"):
        for k in ec2.describe_key_pairs(Filters=flt)["KeyPairs"]:
            orphan("key_pair", k["KeyName"], res.tags_of(k))
    return out
