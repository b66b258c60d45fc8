"""Fast tier of the openstack driver: real openstacksdk over HTTP, answered by requests-mock.

openstacksdk's own `openstack.fixture.connection.ConnectionFixture` provides the Keystone
token and service catalog; a small in-memory cloud behind one requests-mock matcher answers
Nova, Neutron, Glance and Cinder the way the real services do (status codes and error bodies
as measured on the real minimal stack, tests/openstack/). Each test checks the calls that
changed something, and after every failure that the rollback (driver.remove(), as the API
layer calls it) deleted every journaled resource and left the fake cloud empty.
"""
from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest

pytest.importorskip("openstack")
requests_mock = pytest.importorskip("requests_mock")
pytest.importorskip("fixtures")

from openstack.fixture.connection import ConnectionFixture  # noqa: E402

from machine.driver import Journal  # noqa: E402
from machine.errors import MachineError, NotFound, UsageError  # noqa: E402
from machine.model import State  # noqa: E402
from fakes import driver_under_test  # noqa: E402
from machine.drivers.openstack import OpenStackConfig, OpenStackDriver  # noqa: E402
from machine.drivers.openstack.errors import (ActiveTimeout, AuthFailed, Conflict,  # noqa: E402
                                              QuotaExceeded)

# openstacksdk's own deprecation notices about its internals (not about our calls)
pytestmark = [pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
              pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
              pytest.mark.filterwarnings("ignore:Support for InfluxDB")]

AUTH_URL = "https://identity.example.com/v3"
PASSWORD = "s3cr3t-Pa55word"

COMPUTE_VERSION = {"id": "v2.1", "status": "CURRENT", "version": "2.93", "min_version": "2.1",
                   "links": [{"href": "https://compute.example.com/v2.1/", "rel": "self"}]}
NETWORK_VERSION = {"id": "v2.0", "status": "CURRENT",
                   "links": [{"href": "https://network.example.com/v2.0/", "rel": "self"}]}
IMAGE_VERSION = {"id": "v2.16", "status": "CURRENT",
                 "links": [{"href": "https://image.example.com/v2/", "rel": "self"}]}
VOLUME_VERSION = {"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0",
                  "links": [{"href": "https://block-storage.example.com/v3/", "rel": "self"}]}
IDENTITY_VERSION = {"id": "v3.14", "status": "stable",
                    "links": [{"href": "https://identity.example.com/v3/", "rel": "self"}],
                    "media-types": [{"base": "application/json",
                                     "type": "application/vnd.openstack.identity-v3+json"}]}

SERVICE = {"identity.example.com": "identity", "compute.example.com": "compute",
           "network.example.com": "network", "image.example.com": "image",
           "block-storage.example.com": "volume"}


class Reply(Exception):
    def __init__(self, status, body=None, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def nova_error(status, message):
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[status]
    return Reply(status, {key: {"code": status, "message": message}})


def neutron_error(status, kind, message):
    return Reply(status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


class FakeCloud:
    """Nova/Neutron/Glance/Cinder/Keystone state machine behind a single requests-mock matcher."""

    def __init__(self, mocker, fixture):
        self.fixture = fixture
        self.project = fixture.project_id
        self.calls: list[tuple[str, str, str]] = []   # (method, service, path) of every call
        self.bodies: dict[tuple[str, str], list] = {}
        self.faults: dict[tuple[str, str], Reply] = {}
        self.interrupt: set[tuple[str, str]] = set()   # raise KeyboardInterrupt after the change
        self.auth_fail = False
        self.token_bodies: list[dict] = []
        self.build_polls = 1          # GETs a new server stays in BUILD
        self.final_status = "ACTIVE"  # then ACTIVE, ERROR or BUILD (never done)
        self.limits = {"maxTotalInstances": 10, "totalInstancesUsed": 0, "maxTotalCores": 20,
                       "totalCoresUsed": 0, "maxTotalRAMSize": 51200, "totalRAMUsed": 0}
        self.flavors = {"f1": {"id": "f1", "name": "m1.small", "vcpus": 1, "ram": 512, "disk": 10,
                               "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "os-flavor-access:is_public": True}}
        self.images = {"i1": {"id": "i1", "name": "debian-12", "status": "active", "visibility": "public"}}
        self.networks = {
            "n1": {"id": "n1", "name": "private", "router:external": False, "status": "ACTIVE", "shared": False,
                   "project_id": self.project, "subnets": ["s1"]},
            "ext1": {"id": "ext1", "name": "public", "router:external": True, "status": "ACTIVE", "shared": True,
                     "project_id": "admin", "subnets": ["s2"]},
        }
        self.secgroups = {"sg-default": {"id": "sg-default", "name": "default", "description": "Default",
                                         "project_id": self.project, "security_group_rules": []},
                          "sg-docker": {"id": "sg-docker", "name": "docker", "description": "user's",
                                        "project_id": self.project, "security_group_rules": []}}
        self.keypairs: dict[str, dict] = {}
        self.ports: dict[str, dict] = {}
        self.servers: dict[str, dict] = {}
        self.fips: dict[str, dict] = {}
        self.server_groups: dict[str, dict] = {}
        self.volumes: dict[str, dict] = {}
        self._ip = 10
        mocker.register_uri(requests_mock.ANY, re.compile(r"https://[a-z-]+\.example\.com.*"), json=self._handle)

    # -- baseline for "nothing left" ---------------------------------------------------
    def snapshot(self):
        return {k: set(getattr(self, k)) for k in
                ("keypairs", "ports", "servers", "fips", "server_groups", "volumes", "secgroups")}

    def mutations(self):
        return [(m, s, p) for m, s, p in self.calls if m != "GET" and not p.endswith("/auth/tokens")]

    def deleted(self):
        return [p for m, _, p in self.calls if m == "DELETE"]

    # -- the handler ----------------------------------------------------------------------
    def _handle(self, request, context):
        url = urlsplit(request.url)
        service = SERVICE[url.hostname]
        path = url.path
        query = dict(parse_qsl(url.query))
        body = request.json() if request.body else None
        self.calls.append((request.method, service, path))
        key = (request.method, self._resource(service, path))
        self.bodies.setdefault(key, []).append(body)
        try:
            if key in self.faults:
                raise self.faults[key]
            result = getattr(self, f"_{service}")(request.method, path, query, body, context)
            if key in self.interrupt:
                self.interrupt.discard(key)
                raise KeyboardInterrupt
            context.status_code = context.status_code or 200
            return result
        except Reply as r:
            context.status_code = r.status
            context.headers.update(r.headers)
            return r.body

    @staticmethod
    def _resource(service, path):
        parts = [p for p in path.split("/") if p]
        for p in parts:
            if p in ("servers", "os-keypairs", "os-server-groups", "ports", "security-groups",
                     "security-group-rules", "floatingips", "networks", "flavors", "volumes", "tokens",
                     "limits", "images"):
                return p
        return "/".join(parts)

    def _filter(self, items, query, name_regex=False):
        out = []
        for item in items:
            ok = True
            for k, v in query.items():
                if k in ("limit", "marker", "sort_key", "sort_dir", "fields"):
                    continue
                if k == "name" and name_regex:
                    ok = ok and re.search(v, item.get("name", "")) is not None
                elif k in item:
                    ok = ok and str(item[k]).lower() == str(v).lower()
            if ok:
                out.append(item)
        return out

    def _new_ip(self, prefix):
        self._ip += 1
        return f"{prefix}.{self._ip}"

    # -- Keystone --------------------------------------------------------------------------
    def _identity(self, method, path, query, body, context):
        if method == "GET" and path.rstrip("/") == "/v3":
            return {"version": IDENTITY_VERSION}
        if method == "GET" and path in ("", "/"):
            return {"versions": {"values": [IDENTITY_VERSION]}}
        if method == "POST" and path == "/v3/auth/tokens":
            self.token_bodies.append(body)
            if self.auth_fail:
                raise Reply(401, {"error": {"code": 401, "title": "Unauthorized",
                                            "message": "The request you have made requires authentication."}})
            context.status_code = 201
            context.headers["X-Subject-Token"] = uuid.uuid4().hex
            return self.fixture.v3_token
        raise Reply(404, {"error": {"code": 404, "message": f"no {path}"}})

    # -- Nova -------------------------------------------------------------------------------
    def _compute(self, method, path, query, body, context):
        p = path.split("/v2.1", 1)[-1].rstrip("/")
        parts = [x for x in p.split("/") if x]
        if method == "GET" and not parts:
            return {"version": COMPUTE_VERSION} if path.startswith("/v2.1") else {"versions": [COMPUTE_VERSION]}
        head = parts[0]
        if head == "limits":
            return {"limits": {"absolute": self.limits, "rate": []}}
        if head == "flavors":
            if len(parts) == 1 or parts[1] == "detail":
                return {"flavors": list(self.flavors.values())}
            if parts[1] in self.flavors:
                return {"flavor": self.flavors[parts[1]]}
            raise nova_error(404, f"Flavor {parts[1]} could not be found.")
        if head == "os-keypairs":
            return self._keypairs(method, parts, body, context)
        if head == "os-server-groups":
            return self._server_groups(method, parts, query, body)
        if head == "servers":
            return self._servers(method, parts, query, body, context)
        raise nova_error(404, f"unknown {p}")

    def _keypairs(self, method, parts, body, context):
        if method == "POST":
            kp = body["keypair"]
            if kp["name"] in self.keypairs:
                raise nova_error(409, f"Key pair '{kp['name']}' already exists.")
            self.keypairs[kp["name"]] = {"name": kp["name"], "public_key": kp["public_key"],
                                         "fingerprint": "aa:bb", "type": "ssh"}
            return {"keypair": self.keypairs[kp["name"]]}
        if len(parts) == 1:
            return {"keypairs": [{"keypair": k} for k in self.keypairs.values()]}
        name = parts[1]
        if name not in self.keypairs:
            raise nova_error(404, f"Keypair {name} not found.")
        if method == "DELETE":
            del self.keypairs[name]
            context.status_code = 202
            return None
        return {"keypair": self.keypairs[name]}

    def _server_groups(self, method, parts, query, body):
        if method == "POST":
            g = body["server_group"]
            gid = "sg-" + uuid.uuid4().hex[:8]
            self.server_groups[gid] = {"id": gid, "name": g["name"], "policy": g.get("policy"),
                                       "members": [], "rules": {}, "project_id": self.project}
            return {"server_group": self.server_groups[gid]}
        if len(parts) == 1:
            return {"server_groups": self._filter(self.server_groups.values(), query)}
        gid = parts[1]
        if gid not in self.server_groups:
            raise nova_error(404, f"Instance group {gid} could not be found.")
        if method == "DELETE":
            del self.server_groups[gid]
            return None
        return {"server_group": self.server_groups[gid]}

    def _servers(self, method, parts, query, body, context):
        if method == "POST" and len(parts) == 1:
            return self._create_server(body["server"], body.get("OS-SCH-HNT:scheduler_hints"), context)
        if len(parts) == 1 or parts[1] == "detail":
            return {"servers": self._filter(self.servers.values(), query, name_regex=True)}
        sid = parts[1]
        if sid not in self.servers:
            raise nova_error(404, f"Instance {sid} could not be found.")
        server = self.servers[sid]
        if method == "GET":
            if server["status"] == "BUILD":
                if server["_polls"] > 0:
                    server["_polls"] -= 1
                elif self.final_status != "BUILD":
                    server["status"] = self.final_status
                    if self.final_status == "ERROR":
                        server["fault"] = {"code": 500, "message": "No valid host was found. "}
            return {"server": {k: v for k, v in server.items() if not k.startswith("_")}}
        if method == "DELETE":
            self._delete_server(sid)
            context.status_code = 204
            return None
        if method == "POST" and parts[2:] == ["action"]:
            action = next(iter(body))
            if action == "os-stop":
                if server["status"] != "ACTIVE":
                    raise nova_error(409, f"Cannot 'stop' instance {sid} while it is in vm_state stopped")
                server["status"] = "SHUTOFF"
            elif action == "os-start":
                if server["status"] != "SHUTOFF":
                    raise nova_error(409, f"Cannot 'start' instance {sid} while it is in vm_state active")
                server["status"] = "ACTIVE"
            elif action == "reboot":
                server["status"] = "ACTIVE"
            context.status_code = 202
            return None
        raise nova_error(404, "unknown server call")

    def _create_server(self, s, hints, context):
        bdm = s.get("block_device_mapping_v2") or []
        if s["flavorRef"] not in self.flavors:
            raise nova_error(400, f"Flavor {s['flavorRef']} could not be found.")
        if not bdm and s.get("imageRef") not in self.images:
            raise nova_error(400, f"Image {s.get('imageRef')} could not be found.")
        if s.get("key_name") and s["key_name"] not in self.keypairs:
            raise nova_error(400, "Invalid key_name provided.")
        sid = str(uuid.uuid4())
        volumes = []
        for b in bdm:
            vid = str(uuid.uuid4())
            self.volumes[vid] = {"id": vid, "size": b["volume_size"], "status": "in-use",
                                 "_delete_on_termination": b.get("delete_on_termination"), "_server": sid}
            volumes.append({"id": vid, "delete_on_termination": b.get("delete_on_termination")})
        addresses = {}
        for n in s.get("networks") or []:
            port = self.ports[n["port"]]
            port["device_id"] = sid
            port["device_owner"] = "compute:nova"
            addresses.setdefault(self.networks[port["network_id"]]["name"], []).append(
                {"addr": port["fixed_ips"][0]["ip_address"], "version": 4, "OS-EXT-IPS:type": "fixed"})
        group = (hints or {}).get("group")
        if group:
            self.server_groups[group]["members"].append(sid)
        self.servers[sid] = {
            "id": sid, "name": s["name"], "status": "BUILD", "_polls": self.build_polls,
            "metadata": s.get("metadata") or {}, "tags": s.get("tags") or [], "key_name": s.get("key_name"),
            "flavor": {"original_name": self.flavors[s["flavorRef"]]["name"]}, "addresses": addresses,
            "image": "" if bdm else {"id": s.get("imageRef")},
            "os-extended-volumes:volumes_attached": volumes, "_group": group,
            "tenant_id": self.project,
        }
        context.status_code = 202
        return {"server": {"id": sid, "links": [], "adminPass": "x", "OS-DCF:diskConfig": "MANUAL",
                           "security_groups": [{"name": "default"}]}}

    def _delete_server(self, sid):
        server = self.servers.pop(sid)
        for v in server["os-extended-volumes:volumes_attached"]:
            if v.get("delete_on_termination"):
                self.volumes.pop(v["id"], None)
        for port in self.ports.values():
            if port["device_id"] == sid:
                port["device_id"], port["device_owner"] = "", ""
        if server["_group"] in self.server_groups:
            self.server_groups[server["_group"]]["members"].remove(sid)

    # -- Neutron ----------------------------------------------------------------------------
    def _network(self, method, path, query, body, context):
        p = path.split("/v2.0", 1)[-1].rstrip("/")
        parts = [x for x in p.split("/") if x]
        if method == "GET" and not parts:
            return {"versions": [NETWORK_VERSION]} if not path.startswith("/v2.0") else {"resources": []}
        head = parts[0]
        table, key = {
            "networks": (self.networks, "network"), "ports": (self.ports, "port"),
            "security-groups": (self.secgroups, "security_group"), "floatingips": (self.fips, "floatingip"),
            "security-group-rules": (None, "security_group_rule"),
        }[head]
        if method == "POST":
            return self._neutron_create(head, key, body[key], context)
        if len(parts) == 1:
            return {key + "s": self._filter(table.values(), query)}
        rid = parts[1]
        if rid not in table:
            raise neutron_error(404, f"{key.title()}NotFound", f"{key} {rid} could not be found.")
        if method == "DELETE":
            if head == "security-groups" and any(rid in pt.get("security_groups", []) for pt in self.ports.values()):
                raise neutron_error(409, "SecurityGroupInUse", f"Security Group {rid} in use.")
            if head == "ports":
                for fip in self.fips.values():
                    if fip["port_id"] == rid:
                        fip["port_id"] = None
            del table[rid]
            context.status_code = 204
            return None
        return {key: table[rid]}

    def _neutron_create(self, head, key, attrs, context):
        context.status_code = 201
        rid = str(uuid.uuid4())
        if head == "security-groups":
            self.secgroups[rid] = {"id": rid, "name": attrs["name"], "description": attrs.get("description", ""),
                                   "project_id": self.project, "security_group_rules": []}
            return {key: self.secgroups[rid]}
        if head == "security-group-rules":
            rule = dict(attrs, id=rid)
            group = self.secgroups[attrs["security_group_id"]]
            if any({k: r.get(k) for k in attrs} == attrs for r in group["security_group_rules"]):
                raise neutron_error(409, "SecurityGroupRuleExists", "Security group rule already exists.")
            group["security_group_rules"].append(rule)
            return {key: rule}
        if head == "ports":
            if attrs["network_id"] not in self.networks:
                raise neutron_error(404, "NetworkNotFound", f"Network {attrs['network_id']} could not be found.")
            self.ports[rid] = {"id": rid, "name": attrs.get("name", ""), "network_id": attrs["network_id"],
                               "description": attrs.get("description", ""),
                               "security_groups": attrs.get("security_groups", []), "device_id": "",
                               "device_owner": "", "status": "DOWN", "project_id": self.project,
                               "fixed_ips": [{"subnet_id": "s1", "ip_address": self._new_ip("10.0.0")}]}
            return {key: self.ports[rid]}
        if head == "floatingips":
            self.fips[rid] = {"id": rid, "floating_network_id": attrs["floating_network_id"],
                              "port_id": attrs.get("port_id"), "description": attrs.get("description", ""),
                              "floating_ip_address": self._new_ip("203.0.113"), "status": "DOWN",
                              "project_id": self.project}
            return {key: self.fips[rid]}
        raise neutron_error(404, "NotFound", head)

    # -- Glance -----------------------------------------------------------------------------
    def _image(self, method, path, query, body, context):
        parts = [x for x in path.split("/") if x]
        if not parts:
            return {"versions": [IMAGE_VERSION]}
        if parts == ["v2", "images"]:
            return {"images": self._filter(self.images.values(), query)}
        if len(parts) == 3 and parts[1] == "images":
            if parts[2] in self.images:
                return self.images[parts[2]]
            raise Reply(404, {"message": "404 Not Found\n\nNo image found with ID", "code": "404 Not Found"})
        raise Reply(404, {})

    # -- Cinder -----------------------------------------------------------------------------
    def _volume(self, method, path, query, body, context):
        parts = [x for x in path.split("/") if x]
        if not parts:
            return {"versions": [VOLUME_VERSION]}
        if "volumes" in parts and parts[-1] != "volumes":
            vid = parts[-1]
            if vid not in self.volumes:
                raise Reply(404, {"itemNotFound": {"code": 404, "message": f"Volume {vid} could not be found."}})
            if method == "DELETE":
                if self.volumes[vid]["status"] == "in-use":
                    raise Reply(400, {"badRequest": {"code": 400, "message": "Volume status must be available"}})
                del self.volumes[vid]
                context.status_code = 202
                return None
            return {"volume": {k: v for k, v in self.volumes[vid].items() if not k.startswith("_")}}
        return {"versions": [VOLUME_VERSION]}


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def cloud(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "no-clouds.yaml"))
    fixture = ConnectionFixture()
    fixture.setUp()
    with requests_mock.Mocker() as m:
        yield FakeCloud(m, fixture)
    fixture.cleanUp()


BASE = dict(auth_url=AUTH_URL, username="demo", password=PASSWORD, tenant_name="demo",
            flavor_name="m1.small", image_name="debian-12", net_name="private")


def make_driver(tmp_path, name="node-1", journal=None, config=None, **flags):
    d = driver_under_test(OpenStackDriver, tmp_path, name, options={**BASE, **flags}, config=config, journal=journal)
    d.poll_interval = 0.01
    d.delete_timeout = 2
    return d


def reload(tmp_path, d):
    """A second driver on the same record, as a later `machine rm` would build it."""
    config = OpenStackConfig.from_record(copy.deepcopy(d.config.to_record()))
    config.apply_secrets(d.config.secrets())
    return make_driver(tmp_path, d.machine_name, journal=Journal(copy.deepcopy(d.journal.entries)), config=config)


def assert_rolled_back(cloud, d, before):
    """remove() deleted every journaled resource and the cloud is as it was."""
    journaled = [e for e in d.journal if not e.get("pending")]
    pending = [e for e in d.journal if e.get("pending")]
    cloud.calls.clear()
    d.remove()
    deleted = " ".join(cloud.deleted())
    for e in journaled:
        assert e["id"] in deleted, f"{e['kind']} {e['id']} was journaled but never deleted"
    assert not list(d.journal), d.journal.entries
    assert cloud.snapshot() == before, "resources left behind"
    return journaled, pending


def create_failing(d):
    d.pre_create_check()
    with pytest.raises(MachineError) as info:
        d.create()
    return info.value


# ---- the happy path ------------------------------------------------------------------------

def test_create_stop_start_rm_call_sequence(cloud, tmp_path):
    before = cloud.snapshot()
    d = make_driver(tmp_path)
    d.pre_create_check()
    assert cloud.mutations() == [], "pre-create check must create nothing"
    d.create()

    m = cloud.mutations()
    assert [(x[0], x[2].rsplit("/", 1)[-1] if x[0] != "POST" else x[2]) for x in m][:2] == [
        ("POST", "/v2.1/os-keypairs"), ("POST", "/v2.0/security-groups")]
    rules = [b["security_group_rule"] for b in cloud.bodies[("POST", "security-group-rules")]]
    assert sorted((r["protocol"], r["port_range_min"]) for r in rules) == sorted(
        [("tcp", 22), ("tcp", 2376), ("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)])
    assert [p for _, _, p in m[-2:]] == ["/v2.0/ports", "/v2.1/servers"]

    server = cloud.bodies[("POST", "servers")][0]["server"]
    assert server["name"] == "node-1" and server["flavorRef"] == "f1" and server["imageRef"] == "i1"
    assert server["key_name"] == "node-1" and server["networks"] == [{"port": list(cloud.ports)[0]}]
    port = cloud.bodies[("POST", "ports")][0]["port"]
    assert port["security_groups"] == [d.config.security_group_id]

    c = d.config
    assert c.machine_id in cloud.servers
    assert c.ip_address == c.private_ip_address == cloud.ports[server["networks"][0]["port"]]["fixed_ips"][0]["ip_address"]
    assert c.flavor_id == "f1" and c.image_id == "i1" and c.net_id == "n1"
    key = c.ssh_key_path
    assert key == str(tmp_path / "machines" / "node-1" / "id_rsa")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert cloud.keypairs["node-1"]["public_key"].split()[:2] == open(key + ".pub").read().split()[:2]
    ep = d.ssh_endpoint()
    assert (ep.host, ep.port, ep.user, ep.key_path) == (c.ip_address, 22, "root", key)
    assert [e["kind"] for e in d.journal] == ["keypair", "secgroup", "port", "server"]
    assert not any(e.get("pending") for e in d.journal)

    assert d.state() == State.RUNNING
    d.stop()
    assert d.state() == State.STOPPED
    d.stop()  # already stopped: no error
    d.start()
    assert d.state() == State.RUNNING
    d.restart()
    d.kill()
    assert d.state() == State.STOPPED
    d.restart()  # restart of a stopped server starts it
    assert d.state() == State.RUNNING

    d2 = reload(tmp_path, d)
    cloud.calls.clear()
    d2.remove()
    assert [(mth, p.split("/")[-2]) for mth, _, p in cloud.mutations()] == [
        ("DELETE", "servers"), ("DELETE", "ports"), ("DELETE", "security-groups"), ("DELETE", "os-keypairs")]
    assert cloud.snapshot() == before
    assert not list(d2.journal)

    cloud.calls.clear()
    d2.remove()  # idempotent: nothing left to do, nothing called
    assert cloud.calls == []
    d3 = reload(tmp_path, d)
    d3.remove()  # every resource already gone: 404s are fine
    assert not list(d3.journal)


def test_floating_ip_server_group_boot_from_volume_tags_metadata(cloud, tmp_path):
    before = cloud.snapshot()
    d = make_driver(tmp_path, floatingip_pool="public", server_group="workers",
                    server_group_policy="anti-affinity", volume_size=20, volume_type="ssd",
                    tag=["ci", "swarm"], metadata=["owner=qa", "purpose=test"], availability_zone="nova",
                    config_drive=True)
    d.pre_create_check()
    d.create()
    body = cloud.bodies[("POST", "servers")][0]
    s = body["server"]
    assert "imageRef" not in s or not s["imageRef"]
    assert s["block_device_mapping_v2"] == [{"boot_index": 0, "uuid": "i1", "source_type": "image",
                                             "destination_type": "volume", "volume_size": 20,
                                             "delete_on_termination": True, "volume_type": "ssd"}]
    assert s["tags"] == ["ci", "swarm"]
    assert s["metadata"]["owner"] == "qa" and s["metadata"]["purpose"] == "test"
    assert s["availability_zone"] == "nova" and s["config_drive"] is True
    group = cloud.bodies[("POST", "os-server-groups")][0]["server_group"]
    assert group["name"] == "workers" and group.get("policy", group.get("policies", [None])[0]) == "anti-affinity"
    assert body["OS-SCH-HNT:scheduler_hints"] == {"group": d.config.server_group_id}
    fip = next(iter(cloud.fips.values()))
    assert fip["port_id"] in cloud.ports and fip["floating_network_id"] == "ext1"
    assert d.config.ip_address == fip["floating_ip_address"] != d.config.private_ip_address
    assert set(d.addresses()) == {fip["floating_ip_address"], d.config.private_ip_address}
    kinds = [e["kind"] for e in d.journal]
    assert kinds == ["keypair", "secgroup", "server_group", "port", "server", "volume", "floating_ip"]

    cloud.calls.clear()
    d.remove()
    order = [p.split("/")[-2] for p in cloud.deleted()]
    assert order[:2] == ["floatingips", "servers"]
    assert order.index("servers") < order.index("volumes") < order.index("ports")
    assert order[-3:] == ["os-server-groups", "security-groups", "os-keypairs"]
    assert cloud.snapshot() == before


def test_existing_keypair_and_security_groups_are_used_not_deleted(cloud, tmp_path):
    keyfile = tmp_path / "user_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keyfile)], check=True)
    cloud.keypairs["userkey"] = {"name": "userkey", "public_key": open(f"{keyfile}.pub").read(), "fingerprint": "x"}
    before = cloud.snapshot()
    d = make_driver(tmp_path, keypair_name="userkey", private_key_file=str(keyfile),
                    sec_groups="default,docker", ssh_user="ubuntu")
    assert d.config.sec_groups == ["default", "docker"]
    d.pre_create_check()
    d.create()
    assert [p for _, _, p in cloud.mutations()] == ["/v2.0/ports", "/v2.1/servers"]
    assert cloud.bodies[("POST", "ports")][0]["port"]["security_groups"] == ["sg-default", "sg-docker"]
    assert cloud.bodies[("POST", "servers")][0]["server"]["key_name"] == "userkey"
    assert open(d.config.ssh_key_path).read() == open(keyfile).read()
    assert stat.S_IMODE(os.stat(d.config.ssh_key_path).st_mode) == 0o600
    assert d.ssh_endpoint().user == "ubuntu"
    d.remove()
    assert "userkey" in cloud.keypairs and {"sg-default", "sg-docker"} <= set(cloud.secgroups)
    assert cloud.snapshot() == before


def test_private_key_file_without_keypair_is_imported(cloud, tmp_path):
    keyfile = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(keyfile)], check=True)
    os.unlink(f"{keyfile}.pub")  # derive the public key from the private one
    d = make_driver(tmp_path, private_key_file=str(keyfile))
    d.pre_create_check()
    d.create()
    public = cloud.keypairs["node-1"]["public_key"]
    ssh_pub = subprocess.run(["ssh-keygen", "-y", "-f", str(keyfile)], capture_output=True, text=True).stdout
    assert public.split()[:2] == ssh_pub.split()[:2]
    d.remove()
    assert not cloud.keypairs


# ---- errors: one line, nothing left behind -------------------------------------------------

def test_401_auth_creates_nothing(cloud, tmp_path):
    cloud.auth_fail = True
    d = make_driver(tmp_path)
    with pytest.raises(AuthFailed) as info:
        d.pre_create_check()
    msg = str(info.value)
    assert "401" in msg and "\n" not in msg and PASSWORD not in msg
    assert cloud.mutations() == []
    assert not list(d.journal)


@pytest.mark.parametrize("what,flag,message", [
    ("image", "imageRef", "Image i1 could not be found."),
    ("flavor", "flavorRef", "Invalid flavorRef provided."),
])
def test_400_bad_image_or_flavor_rolls_back(cloud, tmp_path, what, flag, message):
    before = cloud.snapshot()
    cloud.faults[("POST", "servers")] = nova_error(400, message)
    d = make_driver(tmp_path)
    err = create_failing(d)
    assert "(400)" in str(err) and message in str(err) and "\n" not in str(err)
    assert [e["kind"] for e in d.journal] == ["keypair", "secgroup", "port"]  # no server: Nova said no
    assert_rolled_back(cloud, d, before)


@pytest.mark.parametrize("flags,missing", [
    (dict(image_name="nope"), "image 'nope' not found"),
    (dict(flavor_name="m9.huge"), "flavor 'm9.huge' not found"),
    (dict(net_name="nowhere"), "network 'nowhere' not found"),
    (dict(sec_groups="default,nosuch"), "security group 'nosuch' not found"),
    (dict(floatingip_pool="nosuch"), "floating IP pool 'nosuch' not found"),
])
def test_pre_create_check_names_what_is_missing(cloud, tmp_path, flags, missing):
    d = make_driver(tmp_path, **flags)
    with pytest.raises(NotFound) as info:
        d.pre_create_check()
    assert missing in str(info.value) and "\n" not in str(info.value)
    assert cloud.mutations() == []


def test_403_quota_in_pre_check_creates_nothing(cloud, tmp_path):
    cloud.limits.update(maxTotalInstances=10, totalInstancesUsed=10)
    d = make_driver(tmp_path)
    with pytest.raises(QuotaExceeded) as info:
        d.pre_create_check()
    assert "instances 10 of 10" in str(info.value)
    assert cloud.mutations() == []


def test_403_quota_from_nova_rolls_back(cloud, tmp_path):
    before = cloud.snapshot()
    cloud.faults[("POST", "servers")] = nova_error(
        403, "Quota exceeded for cores: Requested 1, but already used 20 of 20 cores")
    d = make_driver(tmp_path)
    err = create_failing(d)
    assert isinstance(err, QuotaExceeded) and "quota exceeded" in str(err) and "\n" not in str(err)
    assert_rolled_back(cloud, d, before)


def test_409_existing_keypair_is_not_ours(cloud, tmp_path):
    cloud.keypairs["node-1"] = {"name": "node-1", "public_key": "ssh-rsa AAAAB3Nza other", "fingerprint": "x"}
    before = cloud.snapshot()
    d = make_driver(tmp_path)
    err = create_failing(d)
    assert isinstance(err, Conflict) and "(409)" in str(err) and "already exists" in str(err)
    assert not list(d.journal), "a key pair someone else made must not be journaled"
    assert_rolled_back(cloud, d, before)
    assert cloud.keypairs["node-1"]["public_key"] == "ssh-rsa AAAAB3Nza other"


def test_409_security_group_in_use_is_retried_on_rm(cloud, tmp_path):
    before = cloud.snapshot()
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    # Neutron answers 409 once while the port is still going away
    gid = d.config.security_group_id
    orig = cloud._network
    state = {"n": 0}

    def flaky(method, path, query, body, context):
        if method == "DELETE" and path.endswith(gid) and state["n"] == 0:
            state["n"] += 1
            raise neutron_error(409, "SecurityGroupInUse", f"Security Group {gid} in use.")
        return orig(method, path, query, body, context)
    cloud._network = flaky
    d.remove()
    assert state["n"] == 1 and cloud.snapshot() == before


def test_timeout_waiting_for_active_rolls_back(cloud, tmp_path):
    before = cloud.snapshot()
    cloud.final_status = "BUILD"
    d = make_driver(tmp_path, active_timeout=1)
    err = create_failing(d)
    assert isinstance(err, ActiveTimeout)
    assert "did not become ACTIVE within 1s (status BUILD)" in str(err) and "\n" not in str(err)
    journaled, _ = assert_rolled_back(cloud, d, before)
    assert [e["kind"] for e in journaled] == ["keypair", "secgroup", "port", "server"]


def test_server_error_status_rolls_back(cloud, tmp_path):
    before = cloud.snapshot()
    cloud.final_status = "ERROR"
    d = make_driver(tmp_path, volume_size=5, server_group="grp")
    err = create_failing(d)
    assert "went to ERROR: No valid host was found." in str(err)
    journaled, _ = assert_rolled_back(cloud, d, before)
    assert "volume" in [e["kind"] for e in journaled]


def test_ctrl_c_after_server_post_is_found_by_token(cloud, tmp_path):
    before = cloud.snapshot()
    cloud.interrupt.add(("POST", "servers"))  # the server exists, its ID never came back
    d = make_driver(tmp_path)
    d.pre_create_check()
    with pytest.raises(KeyboardInterrupt):
        d.create()
    assert len(cloud.servers) == 1
    pending = [e for e in d.journal if e.get("pending")]
    assert [e["kind"] for e in pending] == ["server"]
    sid = next(iter(cloud.servers))
    assert_rolled_back(cloud, d, before)
    assert any(p.endswith(sid) for p in cloud.deleted())


def test_ctrl_c_during_keypair_import_deletes_only_our_key(cloud, tmp_path):
    before = cloud.snapshot()
    cloud.interrupt.add(("POST", "os-keypairs"))
    d = make_driver(tmp_path)
    d.pre_create_check()
    with pytest.raises(KeyboardInterrupt):
        d.create()
    assert "node-1" in cloud.keypairs
    assert_rolled_back(cloud, d, before)


def test_remove_after_failure_is_rerunnable(cloud, tmp_path):
    """A delete that fails leaves its entry in the journal; the next rm finishes the job."""
    before = cloud.snapshot()
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    cloud.faults[("DELETE", "os-keypairs")] = Reply(503, {"message": "Service Unavailable"})
    with pytest.raises(MachineError) as info:
        d.remove()
    assert "could not be deleted" in str(info.value)
    assert [e["kind"] for e in d.journal] == ["keypair"]
    del cloud.faults[("DELETE", "os-keypairs")]
    d.remove()
    assert cloud.snapshot() == before and not list(d.journal)


def test_legacy_docker_machine_record_without_journal(cloud, tmp_path):
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    legacy = {k: d.config.to_record()[k] for k in ("AuthUrl", "Username", "TenantName", "MachineId", "KeyPairName",
                                                    "MachineName", "IPAddress")}
    config = OpenStackConfig.from_record(legacy)
    config.apply_secrets({"Password": PASSWORD})
    old = make_driver(tmp_path, config=config)
    old.remove()
    assert not cloud.servers and "node-1" not in cloud.keypairs


# ---- credentials --------------------------------------------------------------------------

def test_password_flag_goes_to_secrets_never_to_config(cloud, tmp_path):
    d = make_driver(tmp_path)
    assert d.config.secrets() == {"Password": PASSWORD}
    assert "Password" not in d.config.to_record() and PASSWORD not in repr(d.config)
    d.pre_create_check()
    d.create()
    assert PASSWORD not in json.dumps(d.config.to_record()) and PASSWORD not in json.dumps(d.journal.entries)
    sent = cloud.token_bodies[0]["auth"]["identity"]["password"]["user"]
    assert sent["password"] == PASSWORD and sent["name"] == "demo"
    d.remove()


def test_os_env_password_is_read_at_use_not_copied(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "from-env")
    d = make_driver(tmp_path, password=None)
    assert d.config.secrets() == {} and "from-env" not in json.dumps(d.config.to_record())
    d.pre_create_check()
    assert cloud.token_bodies[0]["auth"]["identity"]["password"]["user"]["password"] == "from-env"


def test_os_project_name_fallback(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("OS_PROJECT_NAME", "proj-x")
    d = make_driver(tmp_path, tenant_name=None)
    assert d.config.tenant_name == "proj-x"
    d.pre_create_check()
    assert cloud.token_bodies[0]["auth"]["scope"]["project"]["name"] == "proj-x"


def test_clouds_yaml_cloud(cloud, tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  fake:\n    auth:\n      auth_url: https://identity.example.com/v3\n"
        "      username: clouduser\n      password: cloudpass\n      project_name: cloudproj\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    d = make_driver(tmp_path, auth_url=None, username=None, password=None, tenant_name=None, cloud="fake")
    d.pre_create_check()
    d.create()
    user = cloud.token_bodies[0]["auth"]["identity"]["password"]["user"]
    assert user["name"] == "clouduser" and user["password"] == "cloudpass"
    assert d.config.cloud == "fake" and "cloudpass" not in json.dumps(d.config.to_record()) and d.config.secrets() == {}
    d.remove()
    assert not cloud.servers


def test_missing_auth_url_is_a_usage_error(cloud, tmp_path):
    d = make_driver(tmp_path, auth_url=None)
    with pytest.raises(UsageError) as info:
        d.pre_create_check()
    assert "--openstack-auth-url" in str(info.value)


@pytest.mark.parametrize("flags,text", [
    (dict(flavor_id="f1"), "either flavor name or flavor id"),
    (dict(image_name=None), "an image is required"),
    (dict(endpoint_type="nope"), "invalid --openstack-endpoint-type"),
    (dict(ip_version=5), "invalid --openstack-ip-version"),
    (dict(nova_network=True), "nova-network is not supported"),
    (dict(keypair_name="k"), "--openstack-keypair-name needs the matching private key"),
])
def test_flag_validation(cloud, tmp_path, flags, text):
    with pytest.raises(UsageError) as info:  # checked as the options are read, before any call
        make_driver(tmp_path, **flags)
    assert text in str(info.value)
    assert cloud.calls == []


# ---- shape ------------------------------------------------------------------------------------

def test_docker_machine_flag_names_and_config_keys():
    flags = {o.cli_flag("openstack"): o for o in OpenStackDriver.Config.options()}
    dm = {  # docker-machine's flag -> config.json field
        "--openstack-auth-url": "AuthUrl", "--openstack-username": "Username", "--openstack-password": "Password",
        "--openstack-tenant-name": "TenantName", "--openstack-tenant-id": "TenantId",
        "--openstack-domain-name": "DomainName", "--openstack-domain-id": "DomainId",
        "--openstack-region": "Region", "--openstack-flavor-name": "FlavorName", "--openstack-flavor-id": "FlavorId",
        "--openstack-image-name": "ImageName", "--openstack-image-id": "ImageId",
        "--openstack-net-name": "NetworkName", "--openstack-net-id": "NetworkId",
        "--openstack-sec-groups": "SecurityGroups", "--openstack-floatingip-pool": "FloatingIpPool",
        "--openstack-keypair-name": "KeyPairName", "--openstack-private-key-file": "PrivateKeyFile",
        "--openstack-ssh-user": "SSHUser", "--openstack-ssh-port": "SSHPort",
        "--openstack-availability-zone": "AvailabilityZone", "--openstack-endpoint-type": "EndpointType",
        "--openstack-insecure": "Insecure", "--openstack-cacert": "CaCert",
        "--openstack-config-drive": "ConfigDrive", "--openstack-user-data-file": "UserDataFile",
        "--openstack-active-timeout": "ActiveTimeout", "--openstack-ip-version": "IpVersion",
        "--openstack-nova-network": "ComputeNetwork",
    }
    for flag, key in dm.items():
        assert flag in flags, flag
        assert flags[flag].key == key
    assert flags["--openstack-password"].secret and flags["--openstack-application-credential-secret"].secret
    assert flags["--openstack-auth-url"].envvar == "OS_AUTH_URL"
    assert flags["--openstack-cloud"].envvar == "OS_CLOUD"
    assert flags["--openstack-ssh-user"].default == "root" and flags["--openstack-active-timeout"].default == 200
    for extra in ("--openstack-cloud", "--openstack-server-group", "--openstack-server-group-policy",
                  "--openstack-boot-from-volume", "--openstack-volume-size", "--openstack-tag", "--openstack-metadata"):
        assert extra in flags


def test_state_mapping(cloud, tmp_path):
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    server = cloud.servers[d.config.machine_id]
    for status, state in [("ACTIVE", State.RUNNING), ("SHUTOFF", State.STOPPED), ("PAUSED", State.PAUSED),
                          ("SUSPENDED", State.SAVED), ("ERROR", State.ERROR), ("REBOOT", State.STARTING),
                          ("SHELVED_OFFLOADED", State.STOPPED), ("WHATEVER", State.NONE)]:
        server["status"] = status
        assert d.state() == state
    server["status"] = "ACTIVE"
    d.remove()
    with pytest.raises(NotFound):
        d.state()


def test_stopped_reason_while_waiting_for_ssh(cloud, tmp_path):
    """Asked every 10 s of the SSH wait: None while the server may still answer, one line once
    it cannot (shut off, ERROR with Nova's fault, deleted behind our back)."""
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    sid = d.config.machine_id
    server = cloud.servers[sid]
    for status in ("BUILD", "ACTIVE", "REBOOT", "HARD_REBOOT", "MIGRATING"):
        server["status"] = status
        assert d.stopped_reason() is None, status
    server["status"] = "SHUTOFF"
    assert d.stopped_reason() == f"server {sid} is SHUTOFF"
    server.update(status="ERROR", fault={"code": 500, "message": "No valid host was found."})
    assert d.stopped_reason() == f"server {sid} is ERROR: No valid host was found."
    del cloud.servers[sid]
    reason = d.stopped_reason()
    assert reason and "not found" in reason
    d.remove()


def test_importing_the_driver_does_not_load_openstacksdk():
    code = ("import sys, machine.drivers.openstack as m; m.OpenStackDriver.Config.options(); "
            "assert 'openstack' not in sys.modules and 'keystoneauth1' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rm_without_any_password_says_so_and_keeps_the_journal(cloud, tmp_path):
    d = make_driver(tmp_path)
    d.pre_create_check()
    d.create()
    later = make_driver(tmp_path, journal=Journal(copy.deepcopy(d.journal.entries)),
                        config=OpenStackConfig.from_record(copy.deepcopy(d.config.to_record())))
    cloud.calls.clear()
    with pytest.raises(UsageError) as info:
        later.remove()
    assert "OS_PASSWORD" in str(info.value) and "\n" not in str(info.value)
    assert len(later.journal) == 4 and cloud.mutations() == []
    d.remove()
