"""Driver `aws` (alias `amazonec2`): an EC2 instance through boto3.

docker-machine's amazonec2 flags and config.json fields (options.py), credentials from boto3's
own chain, a pre-create check that fails before anything exists, and a journal: every
resource (key pair, security group, spot request, instance, volume, Elastic IP and its
association) is recorded the moment AWS returns its id — and, for the moment between asking
and learning the id, as a "pending" entry carrying the create's token, which every resource
is tagged with at creation, so `rm` finds it by tag. A failed or interrupted create is rolled
back from the journal; `rm` is idempotent; `machine gc -d aws` (cli.py) finds what a lost
record left behind by the same tags.

boto3 is imported only inside methods: `machine ls`/`env` never load it.
"""
from __future__ import annotations

import base64
import logging
import os
import time
import uuid

from ...driver import Capabilities, Driver, remove_journaled
from ...errors import MachineError, NotFound, UsageError
from ...model import State
from . import client as awsclient
from . import keys, resources as res
from .errors import AWSError, AuthFailed, convert, is_definitive, translate
from .options import AWSConfig, parse_port, parse_tags

log = logging.getLogger("machine.drivers.aws")

ENGINE_PORT = 2376

STATE = {
    "pending": State.STARTING, "running": State.RUNNING, "stopping": State.STOPPING,
    "shutting-down": State.STOPPING, "stopped": State.STOPPED, "terminated": State.ERROR,
}

# rm order: the address first, then the spot request and the instance (its volumes and network
# interface go with it), then what remains in reverse order of creation (group, key pair).
#: what goes first at rm (a dependent before what it depends on); key pairs and groups last
REMOVE_ORDER = ("association", "address", "spot_request", "instance", "volume")


class AWSDriver(Driver):
    name = "aws"
    description = "an EC2 instance on AWS (boto3; credentials from its chain: env, profiles, SSO, roles)"
    Config = AWSConfig
    capabilities = Capabilities(cloud=True, private_network=True)
    config: AWSConfig

    #: seconds between polls (tests shorten them)
    poll_interval: float = 2.0
    #: seconds rm waits for an instance to terminate before deleting its security group
    terminate_timeout: float = 300.0
    #: seconds rm keeps looking for a resource whose create was interrupted (eventual consistency)
    pending_grace: float = 10.0

    def __init__(self, config: AWSConfig, ctx):
        super().__init__(config, ctx)
        self._session = None
        self._ec2 = None
        self._resolved: dict | None = None
        self._terminated: set[str] = set()

    # ---- clients ------------------------------------------------------------------------
    @property
    def region(self) -> str:
        if not self.config.region:
            self.config.region = awsclient.region_of(self.config, self._sess())
        return self.config.region

    def _sess(self):
        if self._session is None:
            self._session = awsclient.session(self.config)
        return self._session

    @property
    def ec2(self):
        if self._ec2 is None:
            with translate("connect to EC2"):
                self._ec2 = awsclient.ec2(self.config, self.region, self._sess())
        return self._ec2

    def _tags(self, token: str, **more) -> dict:
        tags = {"Name": self.machine_name}
        tags.update(parse_tags(self.config.tags))
        tags.update({res.TAG_NAME: self.machine_name, res.TAG_TOKEN: token})
        tags.update(more)
        return tags

    # ---- pre-create check: creates nothing ----------------------------------------------
    def pre_create_check(self) -> None:
        self._resolve()

    def _resolve(self) -> dict:
        """Look up and check everything create() needs; one clear line per failure."""
        if self._resolved is not None:
            return self._resolved
        c, ec2 = self.config, self.ec2
        r: dict = {}
        region = self.region
        with translate("check the credentials and region"):
            zone = c.zone_name(region)
            if not res.zone_exists(ec2, zone):
                raise AWSError(f"check the zone: InvalidZone.NotFound: zone {zone} is not in region {region}",
                               "pass a zone of the region with --aws-zone (a, b, …)", "InvalidZone.NotFound")
        r["zone"] = zone
        with translate("look up the subnet and VPC"):
            if c.subnet_id:
                subnet = res.subnet_by_id(ec2, c.subnet_id)
                if c.vpc_id and subnet["VpcId"] != c.vpc_id:
                    raise UsageError(f"subnet {c.subnet_id} does not belong to VPC {c.vpc_id}",
                                     "drop --aws-vpc-id or pass a subnet of that VPC")
                c.vpc_id = subnet["VpcId"]
                if not c.zone or len(c.zone) == 1:
                    r["zone"] = subnet["AvailabilityZone"]
            else:
                if not c.vpc_id:
                    c.vpc_id = res.default_vpc(ec2) or ""
                    if not c.vpc_id:
                        raise UsageError(f"region {region} has no default VPC",
                                         "pass --aws-vpc-id or --aws-subnet-id")
                subnet = res.subnet_in_zone(ec2, c.vpc_id, zone)
                if subnet is None:
                    raise UsageError(f"no subnet of VPC {c.vpc_id} in zone {zone}",
                                     "pass --aws-subnet-id, or another --aws-zone")
                c.subnet_id = subnet["SubnetId"]
        with translate("check the instance type"):
            itype = res.instance_type_info(ec2, c.instance_type)
        archs = (itype.get("ProcessorInfo") or {}).get("SupportedArchitectures") or ["x86_64"]
        arch = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
        with translate("look up the image"):
            if c.ami:
                r["image"] = res.image(ec2, c.ami)
            else:
                img = res.newest_ubuntu(ec2, arch)
                if img is None:
                    raise UsageError(f"no Ubuntu server image for {arch} found in {region}",
                                     "pass an image id with --aws-ami")
                r["image"] = img
                c.ami = img["ImageId"]
        if c.keypair_name:
            with translate("look up the key pair"):
                if not res.key_pair_exists(ec2, c.keypair_name):
                    raise AWSError(f"look up the key pair: InvalidKeyPair.NotFound: there is no key pair "
                                   f"named {c.keypair_name}", "pass an existing key pair to --aws-keypair-name",
                                   "InvalidKeyPair.NotFound")
        if c.elastic_ip and c.elastic_ip != "new":
            with translate("look up the Elastic IP"):
                addr = res.find_address(ec2, c.elastic_ip)
            if addr is None:
                raise AWSError(f"look up the Elastic IP: InvalidAddress.NotFound: {c.elastic_ip} is not an "
                               f"Elastic IP of this account in {region}", "pass 'new' or an address you own",
                               "InvalidAddress.NotFound")
            if addr.get("AssociationId"):
                raise UsageError(f"Elastic IP {addr.get('PublicIp')} is in use ({addr.get('InstanceId') or 'associated'})",
                                 "pass a free address, or 'new'")
            r["address"] = addr
        with translate("check permission and limits to run the instance"):
            res.dry_run(ec2, ImageId=c.ami, InstanceType=c.instance_type, SubnetId=c.subnet_id)
        self._resolved = r
        return r

    # ---- create -------------------------------------------------------------------------
    def create(self) -> None:
        r = self._resolve()
        c, ec2, name = self.config, self.ec2, self.machine_name
        token = uuid.uuid4().hex[:16]
        tags = self._tags(token)

        # 1. SSH key and key pair
        if c.keypair_name:
            c.ssh_key_path, _ = keys.copy_key(os.path.expanduser(c.ssh_keypath), self.machine_dir)
            c.existing_key = True
            key_name = c.keypair_name
        else:
            if c.ssh_keypath:
                c.ssh_key_path, public = keys.copy_key(os.path.expanduser(c.ssh_keypath), self.machine_dir)
            else:
                c.ssh_key_path, public = keys.generate(self.machine_dir, comment=f"machine-{name}")
            key_name = f"{name}-{token[:8]}"
            self._journaled("key_pair", "import the key pair", token,
                            lambda: ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=public.encode(),
                                                        TagSpecifications=res.tag_specs(["key-pair"], tags)),
                            id_of=lambda out: key_name, name=key_name)
            c.keypair_name = key_name
            c.existing_key = False

        # 2. security groups: the named ones; a missing one is created (tagged as ours, shared)
        c.security_group_ids = self._security_groups(token, tags)

        # 3. the instance (on demand, or through a spot request)
        params = self._launch_params(r, key_name)
        if c.request_spot_instance:
            instance_id = self._run_spot(params, token, tags)
        else:
            params.update(ClientToken=token, MinCount=1, MaxCount=1,
                          TagSpecifications=res.tag_specs(["instance", "volume", "network-interface"], tags),
                          MetadataOptions={"HttpTokens": c.metadata_token, "HttpEndpoint": "enabled",
                                           "HttpPutResponseHopLimit": int(c.metadata_hop_limit)})
            out = self._journaled("instance", "run the instance", token, lambda: ec2.run_instances(**params),
                                  id_of=lambda o: o["Instances"][0]["InstanceId"], region=self.region)
            instance_id = out["Instances"][0]["InstanceId"]
        c.instance_id = instance_id
        self.ctx.report(f"instance {instance_id} launched; waiting for it to run")

        # 4. running (journaling its volumes as they show up)
        inst = res.wait_instance(ec2, instance_id, "running", float(c.running_timeout), self.poll_interval,
                                 on_poll=self._journal_volumes)
        c.private_ip_address = inst.get("PrivateIpAddress") or ""
        public = inst.get("PublicIpAddress") or ""

        # 5. Elastic IP
        if c.elastic_ip:
            public = self._elastic_ip(r, instance_id, token, tags)

        if c.private_address_only or c.use_private_address:
            address = c.private_ip_address
        else:
            address = public
        if not address:
            raise AWSError(f"instance {instance_id} has no {'private' if c.use_private_address else 'public'} address",
                           "use a subnet that assigns public addresses, --aws-elastic-ip new, or "
                           "--aws-use-private-address", "NoAddress")
        c.ip_address = address
        log.info("instance %s running at %s", instance_id, address)

    def _launch_params(self, r: dict, key_name: str) -> dict:
        c = self.config
        image = r["image"]
        ebs = {"VolumeSize": int(c.root_size), "VolumeType": c.volume_type, "DeleteOnTermination": True}
        if c.encrypt_ebs_volume:
            ebs["Encrypted"] = True
            if c.kms_key:
                ebs["KmsKeyId"] = c.kms_key
        device = c.device_name or image.get("RootDeviceName") or "/dev/sda1"
        c.device_name = device
        params = {
            "ImageId": c.ami, "InstanceType": c.instance_type, "KeyName": key_name,
            "BlockDeviceMappings": [{"DeviceName": device, "Ebs": ebs}],
            "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": c.subnet_id, "Groups": list(c.security_group_ids),
                                   "AssociatePublicIpAddress": not c.private_address_only,
                                   "DeleteOnTermination": True}],
            "Monitoring": {"Enabled": bool(c.monitoring)},
            "EbsOptimized": bool(c.ebs_optimized),
        }
        if r.get("zone"):
            params["Placement"] = {"AvailabilityZone": r["zone"]}
        if c.iam_instance_profile:
            key = "Arn" if c.iam_instance_profile.startswith("arn:") else "Name"
            params["IamInstanceProfile"] = {key: c.iam_instance_profile}
        if c.userdata:
            with open(os.path.expanduser(c.userdata), "rb") as f:
                params["UserData"] = f.read().decode("utf-8", "replace")
        return params

    def _run_spot(self, params: dict, token: str, tags: dict) -> str:
        c, ec2 = self.config, self.ec2
        spec = {k: v for k, v in params.items() if k != "Placement"}
        if params.get("Placement"):
            spec["Placement"] = {"AvailabilityZone": params["Placement"]["AvailabilityZone"]}
        if "UserData" in spec:
            spec["UserData"] = base64.b64encode(spec["UserData"].encode()).decode()
        req = {"InstanceCount": 1, "Type": "one-time", "ClientToken": token, "LaunchSpecification": spec,
               "TagSpecifications": res.tag_specs(["spot-instances-request"], tags)}
        if c.spot_price:
            req["SpotPrice"] = c.spot_price
        if c.block_duration_minutes:
            req["BlockDurationMinutes"] = int(c.block_duration_minutes)
        out = self._journaled("spot_request", "request the spot instance", token,
                              lambda: ec2.request_spot_instances(**req),
                              id_of=lambda o: o["SpotInstanceRequests"][0]["SpotInstanceRequestId"],
                              region=self.region)
        sir = out["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
        c.spot_request_id = sir
        self.ctx.report(f"spot request {sir} made; waiting for it to be fulfilled")
        with translate("wait for the spot request"):
            instance_id = res.wait_spot(ec2, sir, float(c.running_timeout), self.poll_interval)
        self.journal.record("instance", instance_id, region=self.region, spot_request=sir)
        # a spot request cannot tag its instance or set IMDS options at launch: done right after
        with translate("tag the spot instance"):
            ec2.create_tags(Resources=[instance_id], Tags=res.tag_list(tags))
        with translate("require IMDSv2 on the spot instance"):
            ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens=c.metadata_token,
                                                 HttpEndpoint="enabled",
                                                 HttpPutResponseHopLimit=int(c.metadata_hop_limit))
        return instance_id

    def _security_groups(self, token: str, tags: dict) -> list[str]:
        c, ec2 = self.config, self.ec2
        names = list(dict.fromkeys(c.security_groups or []))
        open_ports = [parse_port(p) for p in c.open_ports]
        ids = []
        # one create at a time per store: two machines must not both create the shared group
        with self.ctx.lock(f"aws-security-groups-{self.region}"):
            with translate("look up the security groups"):
                found = res.groups_by_name(ec2, c.vpc_id, names)
            for gname in names:
                group = found.get(gname)
                if group is None:
                    gtags = dict(tags, **{res.TAG_MANAGED: "true", "Name": gname})
                    gid = self._journaled("security_group", f"create the security group {gname}", token,
                                          lambda: res.create_group(ec2, gname, c.vpc_id, gtags),
                                          id_of=lambda g: g, name=gname, vpc=c.vpc_id, shared=True)
                    group = {"GroupId": gid, "GroupName": gname, "IpPermissions": []}
                    readonly = False
                else:
                    gid = group["GroupId"]
                    if res.tags_of(group).get(res.TAG_MANAGED) == "true":
                        # ours, shared with other machines: the last one to go deletes it
                        self.journal.record("security_group", gid, name=gname, vpc=c.vpc_id, shared=True)
                    readonly = c.security_group_readonly
                if not readonly:
                    with translate(f"add rules to the security group {gname}"):
                        res.authorize(ec2, gid, res.missing_rules(group, int(c.ssh_port or 22), ENGINE_PORT,
                                                                  open_ports, swarm=True))
                ids.append(gid)
        if not ids:
            raise UsageError("no security group", "pass --aws-security-group NAME")
        return ids

    def _elastic_ip(self, r: dict, instance_id: str, token: str, tags: dict) -> str:
        c, ec2 = self.config, self.ec2
        if c.elastic_ip == "new":
            out = self._journaled("address", "allocate the Elastic IP", token,
                                  lambda: ec2.allocate_address(Domain="vpc",
                                                               TagSpecifications=res.tag_specs(["elastic-ip"], tags)),
                                  id_of=lambda o: o["AllocationId"], region=self.region)
            alloc, ip = out["AllocationId"], out["PublicIp"]
            self.journal.forget("address", alloc)
            self.journal.record("address", alloc, region=self.region, ip=ip)
        else:
            alloc, ip = r["address"]["AllocationId"], r["address"]["PublicIp"]
        with translate("associate the Elastic IP"):
            assoc = ec2.associate_address(AllocationId=alloc, InstanceId=instance_id,
                                          AllowReassociation=False)["AssociationId"]
        self.journal.record("association", assoc, region=self.region, ip=ip, allocation=alloc)
        return ip

    def _journaled(self, kind: str, action: str, token: str, call, id_of, **attrs):
        """Make one resource, journaled before the call (pending, found later by its token tag)
        and after it (with its id)."""
        pending_id = f"pending-{kind}-{token}"
        self.journal.record(kind, pending_id, pending=True, token=token, **attrs)
        try:
            with translate(action):
                out = call()
        except BaseException as exc:
            # AWS said no: nothing was made. Anything else (Ctrl-C, a timeout, a 5xx) may have
            # made it: rm looks for it by the token tag.
            cause = exc.__cause__ if isinstance(exc, MachineError) else exc
            if isinstance(cause, Exception) and is_definitive(cause):
                self.journal.forget(kind, pending_id)
            raise
        self.journal.record(kind, id_of(out), token=token, **attrs)
        self.journal.forget(kind, pending_id)
        return out

    def _journal_volumes(self, inst: dict) -> None:
        known = {e["id"] for e in self.journal.of_kind("volume")}
        for m in inst.get("BlockDeviceMappings") or []:
            vid = (m.get("Ebs") or {}).get("VolumeId")
            if vid and vid not in known:
                self.journal.record("volume", vid, region=self.region, instance=inst["InstanceId"])
                known.add(vid)

    # ---- remove: everything in the journal; missing is fine --------------------------------
    def remove(self) -> None:
        entries = list(self.journal)
        if not entries and self.config.instance_id:
            # a record docker-machine wrote has no journal: its instance, spot request and key pair
            entries = [{"kind": "instance", "id": self.config.instance_id}]
            if self.config.spot_request_id:
                entries.append({"kind": "spot_request", "id": self.config.spot_request_id})
            if self.config.keypair_name and not self.config.existing_key:
                entries.append({"kind": "key_pair", "id": self.config.keypair_name})
        if not entries:
            return
        remove_journaled(entries, order=REMOVE_ORDER, remove_entry=self._remove_entry, translate=convert,
                         error_class=AWSError, fatal=(UsageError, AuthFailed), log=log)

    def _resolve_pending(self, entry: dict) -> list[str]:
        """Ids of what an interrupted create may have made, found by its token tag."""
        kind, token, ec2 = entry["kind"], entry.get("token", ""), self.ec2
        flt = [{"Name": f"tag:{res.TAG_TOKEN}", "Values": [token]}]
        deadline = time.monotonic() + self.pending_grace
        while True:
            if kind == "instance":
                ids = [i["InstanceId"] for i in res.instances_by_tag(ec2, res.TAG_TOKEN, [token], live_only=False)
                       if i["State"]["Name"] != "terminated"]
            elif kind == "spot_request":
                ids = [s["SpotInstanceRequestId"] for s in
                       ec2.describe_spot_instance_requests(Filters=flt)["SpotInstanceRequests"]
                       if s.get("State") not in ("cancelled", "closed")]
            elif kind == "security_group":
                ids = [g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]]
            elif kind == "key_pair":
                ids = [k["KeyName"] for k in ec2.describe_key_pairs(Filters=flt)["KeyPairs"]]
                if not ids and entry.get("name") and res.key_pair_exists(ec2, entry["name"]):
                    ids = [entry["name"]]   # imported but not tagged yet
            elif kind == "address":
                ids = [a["AllocationId"] for a in ec2.describe_addresses(Filters=flt)["Addresses"]]
            else:
                ids = []
            if ids or time.monotonic() >= deadline:
                return ids
            time.sleep(min(self.poll_interval, 1.0))

    def _remove_entry(self, entry: dict) -> None:
        kind, rid, ec2 = entry["kind"], entry["id"], self.ec2
        ids = self._resolve_pending(entry) if entry.get("pending") else [rid]
        for one in ids:
            if kind == "association":
                res.gone(ec2.disassociate_address, AssociationId=one)
            elif kind == "address":
                res.gone(ec2.release_address, AllocationId=one)
            elif kind == "spot_request":
                self._cancel_spot(one)
            elif kind == "instance":
                self._terminated.add(one)
                if res.terminate(ec2, one):
                    self.ctx.report(f"instance {one} terminating")
                    res.wait_terminated(ec2, one, self.terminate_timeout, self.poll_interval)
            elif kind == "volume":
                res.gone(ec2.delete_volume, VolumeId=one)
            elif kind == "security_group":
                self._delete_group(one, entry)
            elif kind == "key_pair":
                res.gone(ec2.delete_key_pair, KeyName=one)
            else:
                log.warning("unknown journal entry %s %s: left alone", kind, one)
        if kind == "instance" and self.config.instance_id in ids + [rid]:
            self.config.instance_id = ""
        if entry in self.journal.entries:
            self.journal.forget(kind, rid)

    def _cancel_spot(self, sir: str) -> None:
        from botocore.exceptions import ClientError

        try:
            out = self.ec2.describe_spot_instance_requests(
                Filters=[{"Name": "spot-instance-request-id", "Values": [sir]}])["SpotInstanceRequests"]
        except ClientError:
            out = []
        if not out or out[0].get("State") in ("cancelled", "closed"):
            return
        res.gone(self.ec2.cancel_spot_instance_requests, SpotInstanceRequestIds=[sir])
        # an instance the request started after we looked goes too
        iid = out[0].get("InstanceId")
        if iid and res.terminate(self.ec2, iid):
            res.wait_terminated(self.ec2, iid, self.terminate_timeout, self.poll_interval)

    def _delete_group(self, gid: str, entry: dict) -> None:
        from botocore.exceptions import ClientError

        ec2 = self.ec2
        try:
            groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroups"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code", "").endswith("NotFound"):
                return
            raise
        if not groups:
            return
        if res.tags_of(groups[0]).get(res.TAG_MANAGED) != "true":
            return   # not ours: left alone
        # shared: only when no other instance uses it
        mine = {e["id"] for e in self.journal.of_kind("instance")} | {self.config.instance_id} | self._terminated
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])["NetworkInterfaces"]
        users = [n for n in enis if (n.get("Attachment") or {}).get("InstanceId") not in mine]
        if users:
            log.info("security group %s is still used by other machines: kept", gid)
            return
        deadline = time.monotonic() + self.terminate_timeout
        while True:
            try:
                res.gone(ec2.delete_security_group, GroupId=gid)
                return
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code")
                if code not in ("DependencyViolation", "InvalidGroup.InUse") or time.monotonic() >= deadline:
                    if code in ("DependencyViolation", "InvalidGroup.InUse"):
                        log.info("security group %s still in use: kept", gid)
                        return
                    raise
            time.sleep(self.poll_interval)

    # ---- power --------------------------------------------------------------------------
    def _instance_id(self) -> str:
        iid = self.config.instance_id
        if not iid:
            raise NotFound(f"machine {self.machine_name} has no instance", "it was never created or is removed")
        return iid

    def _describe(self) -> dict:
        iid = self._instance_id()
        with translate("look up the instance"):
            inst = res.describe_instance(self.ec2, iid)
        if inst is None:
            raise NotFound(f"instance {iid} of {self.machine_name} does not exist", "remove the machine: machine rm")
        return inst

    def _refresh_address(self, inst: dict) -> None:
        c = self.config
        c.private_ip_address = inst.get("PrivateIpAddress") or c.private_ip_address
        if c.private_address_only or c.use_private_address:
            c.ip_address = c.private_ip_address
        elif inst.get("PublicIpAddress"):
            c.ip_address = inst["PublicIpAddress"]

    def start(self) -> None:
        inst = self._describe()
        if inst["State"]["Name"] != "running":
            with translate("start the instance"):
                self.ec2.start_instances(InstanceIds=[inst["InstanceId"]])
            inst = res.wait_instance(self.ec2, inst["InstanceId"], "running", float(self.config.running_timeout),
                                     self.poll_interval)
        self._refresh_address(inst)

    def _stop(self, force: bool) -> None:
        inst = self._describe()
        if inst["State"]["Name"] in ("stopped", "stopping"):
            return
        with translate("stop the instance"):
            self.ec2.stop_instances(InstanceIds=[inst["InstanceId"]], Force=force)
        res.wait_instance(self.ec2, inst["InstanceId"], "stopped", float(self.config.running_timeout),
                          self.poll_interval)

    def stop(self) -> None:
        self._stop(force=False)

    def kill(self) -> None:
        self._stop(force=True)

    def restart(self) -> None:
        inst = self._describe()
        if inst["State"]["Name"] != "running":
            self.start()
            return
        with translate("reboot the instance"):
            self.ec2.reboot_instances(InstanceIds=[inst["InstanceId"]])
        self._refresh_address(res.wait_instance(self.ec2, inst["InstanceId"], "running",
                                                float(self.config.running_timeout), self.poll_interval))

    def state(self) -> State:
        return STATE.get(self._describe()["State"]["Name"], State.NONE)

    def stopped_reason(self) -> str | None:
        # One DescribeInstances per probe (every 10 s of an SSH wait): a spot instance reclaimed
        # or an instance stopped from the console fails the create now, not at the deadline.
        try:
            name = self._describe()["State"]["Name"]
        except NotFound as e:
            return e.message
        if name in ("stopping", "stopped", "shutting-down", "terminated"):
            return f"instance {self.config.instance_id} is {name}"
        return None

    # ---- addresses ----------------------------------------------------------------------
    def addresses(self) -> list[str]:
        out = []
        for ip in (self.config.ip_address, self.config.private_ip_address):
            if ip and ip not in out:
                out.append(ip)
        return out

    def private_address(self) -> str | None:
        return self.config.private_ip_address or None

    # ---- ls: one DescribeInstances per region ----------------------------------------------
    @classmethod
    def batch_states(cls, drivers: list["AWSDriver"]) -> dict[str, State] | None:
        groups: dict[tuple, list[AWSDriver]] = {}
        out: dict[str, State] = {}
        for d in drivers:
            c = d.config
            if not c.instance_id:
                out[d.machine_name] = State.NONE
                continue
            key = (c.region, c.endpoint_url, c.insecure_transport, c.profile, c.access_key, c.secret_key,
                   c.session_token)
            groups.setdefault(key, []).append(d)
        for members in groups.values():
            first = members[0]
            by_id = {d.config.instance_id: d for d in members}
            ids = list(by_id)
            found: dict[str, str] = {}
            try:
                ec2 = first.ec2
                for i in range(0, len(ids), 199):   # DescribeInstances takes up to 200 filter values
                    chunk = ids[i:i + 199]
                    with translate("list the instances"):
                        for page in ec2.get_paginator("describe_instances").paginate(
                                Filters=[{"Name": "instance-id", "Values": chunk}]):
                            for r in page["Reservations"]:
                                for inst in r["Instances"]:
                                    found[inst["InstanceId"]] = inst["State"]["Name"]
            except MachineError as e:
                log.warning("%s", e)
                for d in members:
                    out[d.machine_name] = State.ERROR
                continue
            for iid, d in by_id.items():
                out[d.machine_name] = STATE.get(found[iid], State.NONE) if iid in found else State.ERROR
        return out
