"""A small stateful emulator of the Compute Engine v1 REST API, for the google driver's tests.

Written from the public reference (cloud.google.com/compute/docs/reference/rest/v1) and
served over plain http on 127.0.0.1 (google-cloud-compute's REST transport accepts an
http `api_endpoint`). The real `compute_v1` clients talk to it unchanged.

What it keeps: instances (PROVISIONING → STAGING → RUNNING, STOPPING → TERMINATED,
reset), their boot disks (auto-deleted), firewall rules, zone and global operations
(`RUNNING` until `op_seconds` have passed, then `DONE`, with `error.errors[]` when they
failed), the default network and subnetworks, machine, disk and accelerator types,
public images and families, and regional quotas (CPUS, IN_USE_ADDRESSES, GPUs).
External addresses come from 127.50.0.0/24, so a VM's public address is a loopback one
the test gateway can forward to a real VM. Errors use Google's body
`{"error": {"code", "message", "errors": [{"reason", "domain", "message"}]}}`: notFound 404,
alreadyExists 409, invalid 400, quotaExceeded 403, resourceInUseByAnotherResource 400,
authError 401.

Credentials: google-auth's application default credentials from a service-account key
file whose `token_uri` is this emulator's `/token`; both the OAuth2 JWT-bearer grant and
the self-signed JWTs google-cloud-compute sends are checked against the key's public half.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import time

from .base import AddressPool, Emulator, Reply

PROJECT = "machine-test"
ZONES = {"us-central1-a": "us-central1", "us-central1-b": "us-central1", "europe-west1-b": "europe-west1"}
MACHINE_TYPES = {"e2-micro": (2, 1024), "e2-small": (2, 2048), "e2-medium": (2, 4096), "n1-standard-1": (1, 3840),
                 "n1-standard-2": (2, 7680), "n1-standard-4": (4, 15360), "e2-standard-4": (4, 16384)}
DISK_TYPES = ("pd-standard", "pd-balanced", "pd-ssd")
ACCELERATORS = {"nvidia-tesla-t4": ("NVIDIA_T4_GPUS", 4), "nvidia-l4": ("NVIDIA_L4_GPUS", 8)}
IMAGES = {  # project -> [(name, family)]
    "debian-cloud": [("debian-11-bullseye-v20240110", "debian-11"), ("debian-12-bookworm-v20240110", "debian-12"),
                     ("debian-12-bookworm-v20240213", "debian-12")],
    "ubuntu-os-cloud": [("ubuntu-2204-jammy-v20240110", "ubuntu-2204-lts")],
}
NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
V1 = "/compute/v1/projects/(?P<project>[^/]+)"
ZONE = V1 + "/zones/(?P<zone>[^/]+)"


def gerr(status: int, reason: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": status, "message": message,
                                    "errors": [{"message": message, "domain": "global", "reason": reason}]}})


def not_found(path: str) -> Reply:
    return gerr(404, "notFound", f"The resource '{path}' was not found")


def b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class GoogleEmulator(Emulator):
    name = "google"

    def __init__(self, *, public_pool: str = "127.50.0.0/24", op_seconds: float = 0.0):
        super().__init__()
        self.projects = {PROJECT}
        self.keys: dict[str, object] = {}          # key id -> RSA public key
        self.accounts: dict[str, str] = {}         # key id -> client_email
        self.tokens: set[str] = set()
        self.instances: dict[str, dict] = {}       # "project/zone/name" -> instance
        self.disks: dict[str, dict] = {}
        self.firewalls: dict[str, dict] = {}       # "project/name" -> firewall
        self.ops: dict[str, dict] = {}
        self.op_seconds = op_seconds
        self.public_ips = AddressPool(public_pool, first=2)
        self.private_ips = AddressPool("10.128.0.0/20", first=2)
        self.quota = {"CPUS": 24, "IN_USE_ADDRESSES": 8, "NVIDIA_T4_GPUS": 1, "NVIDIA_L4_GPUS": 0}
        self._next_id = 1000
        self.addresses: dict[str, str] = {}        # "project/region/name" -> reserved static IP

    # ---- credentials ---------------------------------------------------------------------
    def service_account(self, directory, name: str = "machine-ci") -> str:
        """Write a service-account key file (as `gcloud iam service-accounts keys create` does) and
        register its public key; returns the file's path (for GOOGLE_APPLICATION_CREDENTIALS)."""
        from pathlib import Path

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(20)
        email = f"{name}@{PROJECT}.iam.gserviceaccount.com"
        with self.lock:
            self.keys[kid] = key.public_key()
            self.accounts[kid] = email
        info = {"type": "service_account", "project_id": PROJECT, "private_key_id": kid,
                "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode(),
                "client_email": email, "client_id": str(10 ** 20 + len(self.keys)),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": f"{self.url}/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "", "universe_domain": "googleapis.com"}
        path = Path(directory) / f"{name}.json"
        path.write_text(json.dumps(info, indent=2))
        path.chmod(0o600)
        return str(path)

    def _verify_jwt(self, jwt: str) -> dict | None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head_b, body_b, sig_b = jwt.split(".")
            head = json.loads(b64url(head_b))
            body = json.loads(b64url(body_b))
            pub = self.keys.get(head.get("kid"))
            if pub is None or body.get("iss") != self.accounts.get(head.get("kid")):
                return None
            pub.verify(b64url(sig_b), f"{head_b}.{body_b}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return None
        if body.get("exp", 0) < time.time() - 60:
            return None
        return body

    def is_token_request(self, method, path):
        return path == "/token"

    def token(self, req, m):
        form = req.body if isinstance(req.body, dict) else {}
        claims = self._verify_jwt(form.get("assertion", ""))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or claims is None:
            raise Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        tok = "ya29.emu-" + secrets.token_hex(16)
        self.tokens.add(tok)
        return 200, {"access_token": tok, "expires_in": 3599, "token_type": "Bearer"}

    def authenticate(self, h, method, path):
        auth = h.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        if tok in self.tokens or (tok.count(".") == 2 and self._verify_jwt(tok)):
            return
        raise Reply(401, {"error": {
            "code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                       "or other valid authentication credential. See https://developers.google.com/identity/sign-in/"
                       "web/devconsole-project.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}]}})

    # ---- helpers ---------------------------------------------------------------------------
    def link(self, path: str) -> str:
        return f"{self.url}/compute/v1/{path}"

    def _id(self) -> str:
        self._next_id += 1
        return str(8_000_000_000_000_000_000 + self._next_id)

    def _project(self, m):
        if m["project"] not in self.projects:
            raise gerr(404, "notFound", f"The resource 'projects/{m['project']}' was not found")
        return m["project"]

    def _zone(self, m):
        self._project(m)
        if m["zone"] not in ZONES:
            raise gerr(400, "invalid", f"Invalid value for field 'zone': '{m['zone']}'. Unknown zone.")
        return m["zone"]

    @staticmethod
    def _tail(url: str) -> str:
        """A full or partial resource URL -> "projects/…" or the partial path as given."""
        url = url or ""
        i = url.find("projects/")
        return url[i:] if i >= 0 else url

    def owned(self) -> list[str]:
        with self.lock:
            return sorted([i["selfLink"] for i in self.instances.values()] +
                          [d["selfLink"] for d in self.disks.values()] +
                          [f["selfLink"] for f in self.firewalls.values()])

    # ---- operations -----------------------------------------------------------------------------
    def _op(self, project, zone, kind, target, done, error=None):
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(6)}"
        where = f"projects/{project}/zones/{zone}" if zone else f"projects/{project}/global"
        op = {"kind": "compute#operation", "id": self._id(), "name": name, "operationType": kind,
              "targetLink": self.link(target), "targetId": self._id(), "status": "RUNNING", "progress": 0,
              "insertTime": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00"), "user": "machine-ci",
              "selfLink": self.link(f"{where}/operations/{name}")}
        if zone:
            op["zone"] = self.link(f"projects/{project}/zones/{zone}")
        self.ops[name] = {"op": op, "at": time.monotonic() + self.op_seconds, "done": done, "error": error}
        return 200, dict(op)

    def advance(self, force: bool = False):
        now = time.monotonic()
        for rec in self.ops.values():
            op = rec["op"]
            if op["status"] != "DONE" and (force or now >= rec["at"]):
                try:
                    rec["done"]()
                except Reply as r:
                    e = (r.body or {}).get("error", {})
                    rec["error"] = {"errors": [{"code": (e.get("errors") or [{}])[0].get("reason", "ERROR").upper(),
                                                "message": e.get("message", "")}]}
                    op["httpErrorStatusCode"] = r.status
                op["status"], op["progress"] = "DONE", 100
                op["endTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00")
                if rec["error"]:
                    op["error"] = rec["error"]

    def settle(self):
        with self.lock:
            self.advance(force=True)

    def op_get(self, req, m):
        self._project(m)
        rec = self.ops.get(m["op"])
        if rec is None:
            where = f"zones/{m['zone']}" if m.get("zone") else "global"
            raise not_found(f"projects/{m['project']}/{where}/operations/{m['op']}")
        return 200, dict(rec["op"])

    def op_wait(self, req, m):
        rec = self.ops.get(m["op"])
        if rec is not None and rec["op"]["status"] != "DONE":
            # the real wait returns when DONE or after about 2 minutes; we return within a second
            self.lock.release()
            try:
                time.sleep(max(0.0, min(1.0, rec["at"] - time.monotonic())))
            finally:
                self.lock.acquire()
            self.advance()
        return self.op_get(req, m)

    # ---- catalogue ------------------------------------------------------------------------------
    def zone_get(self, req, m):
        z = self._zone(m)
        return 200, {"kind": "compute#zone", "name": z, "status": "UP",
                     "region": self.link(f"projects/{m['project']}/regions/{ZONES[z]}"),
                     "selfLink": self.link(f"projects/{m['project']}/zones/{z}")}

    def region_get(self, req, m):
        self._project(m)
        r = m["region"]
        if r not in ZONES.values():
            raise not_found(f"projects/{m['project']}/regions/{r}")
        cpus = sum(MACHINE_TYPES[i["_type"]][0] for i in self.instances.values()
                   if ZONES[i["_zone"]] == r and i["status"] not in ("TERMINATED", "STOPPED"))
        addrs = sum(1 for i in self.instances.values() if ZONES[i["_zone"]] == r
                    for n in i["networkInterfaces"] for a in n.get("accessConfigs", []) if a.get("natIP"))
        gpus: dict[str, int] = {}
        for i in self.instances.values():
            if ZONES[i["_zone"]] == r and i["status"] not in ("TERMINATED", "STOPPED"):
                for acc in i.get("guestAccelerators", []):
                    metric = ACCELERATORS[acc["acceleratorType"].rsplit("/", 1)[-1]][0]
                    gpus[metric] = gpus.get(metric, 0) + int(acc.get("acceleratorCount", 1))
        quotas = [{"metric": "CPUS", "limit": float(self.quota["CPUS"]), "usage": float(cpus)},
                  {"metric": "IN_USE_ADDRESSES", "limit": float(self.quota["IN_USE_ADDRESSES"]),
                   "usage": float(addrs)}]
        for metric in ("NVIDIA_T4_GPUS", "NVIDIA_L4_GPUS"):
            quotas.append({"metric": metric, "limit": float(self.quota[metric]), "usage": float(gpus.get(metric, 0))})
        return 200, {"kind": "compute#region", "name": r, "status": "UP", "quotas": quotas,
                     "zones": [self.link(f"projects/{m['project']}/zones/{z}") for z, rr in ZONES.items() if rr == r],
                     "selfLink": self.link(f"projects/{m['project']}/regions/{r}")}

    def machine_type_get(self, req, m):
        z = self._zone(m)
        t = m["name"]
        if t not in MACHINE_TYPES:
            raise not_found(f"projects/{m['project']}/zones/{z}/machineTypes/{t}")
        cpus, mem = MACHINE_TYPES[t]
        return 200, {"kind": "compute#machineType", "name": t, "guestCpus": cpus, "memoryMb": mem, "zone": z,
                     "isSharedCpu": t.startswith("e2-") and cpus <= 2 and mem <= 2048,
                     "selfLink": self.link(f"projects/{m['project']}/zones/{z}/machineTypes/{t}")}

    def disk_type_get(self, req, m):
        z = self._zone(m)
        if m["name"] not in DISK_TYPES:
            raise not_found(f"projects/{m['project']}/zones/{z}/diskTypes/{m['name']}")
        return 200, {"kind": "compute#diskType", "name": m["name"], "zone": z,
                     "selfLink": self.link(f"projects/{m['project']}/zones/{z}/diskTypes/{m['name']}")}

    def accelerator_get(self, req, m):
        z = self._zone(m)
        if m["name"] not in ACCELERATORS:
            raise not_found(f"projects/{m['project']}/zones/{z}/acceleratorTypes/{m['name']}")
        return 200, {"kind": "compute#acceleratorType", "name": m["name"], "zone": z,
                     "maximumCardsPerInstance": ACCELERATORS[m["name"]][1],
                     "selfLink": self.link(f"projects/{m['project']}/zones/{z}/acceleratorTypes/{m['name']}")}

    def _image(self, project, name=None, family=None):
        images = IMAGES.get(project, []) if project not in self.projects else IMAGES.get(project, [])
        found = [(n, f) for n, f in images if (name and n == name) or (family and f == family)]
        if not found:
            path = f"projects/{project}/global/images/" + (f"family/{family}" if family else name)
            raise not_found(path)
        n, f = found[-1]
        return {"kind": "compute#image", "name": n, "family": f, "status": "READY", "diskSizeGb": "10",
                "selfLink": self.link(f"projects/{project}/global/images/{n}")}

    def image_get(self, req, m):
        return 200, self._image(m["project"], name=m["name"])

    def image_family(self, req, m):
        return 200, self._image(m["project"], family=m["name"])

    def network_get(self, req, m):
        self._project(m)
        if m["name"] != "default":
            raise not_found(f"projects/{m['project']}/global/networks/{m['name']}")
        return 200, {"kind": "compute#network", "name": "default", "autoCreateSubnetworks": True,
                     "selfLink": self.link(f"projects/{m['project']}/global/networks/default")}

    def subnetwork_get(self, req, m):
        self._project(m)
        if m["name"] != "default" or m["region"] not in ZONES.values():
            raise not_found(f"projects/{m['project']}/regions/{m['region']}/subnetworks/{m['name']}")
        return 200, {"kind": "compute#subnetwork", "name": "default", "ipCidrRange": "10.128.0.0/20",
                     "network": self.link(f"projects/{m['project']}/global/networks/default"),
                     "region": self.link(f"projects/{m['project']}/regions/{m['region']}"),
                     "selfLink": self.link(f"projects/{m['project']}/regions/{m['region']}/subnetworks/default")}

    def address_get(self, req, m):
        self._project(m)
        found = self.addresses.get(f"{m['project']}/{m['region']}/{m['name']}")
        if found is None:
            raise not_found(f"projects/{m['project']}/regions/{m['region']}/addresses/{m['name']}")
        return 200, {"kind": "compute#address", "name": m["name"], "address": found, "status": "RESERVED",
                     "selfLink": self.link(f"projects/{m['project']}/regions/{m['region']}/addresses/{m['name']}")}

    def reserve_address(self, name: str, region: str = "us-central1") -> str:
        """A static external address reserved by the user (taken from the public pool)."""
        with self.lock:
            ip = self.public_ips.take()
            self.addresses[f"{PROJECT}/{region}/{name}"] = ip
            return ip

    # ---- firewalls ------------------------------------------------------------------------------
    def firewall_insert(self, req, m):
        p = self._project(m)
        body = req.json()
        name = body.get("name", "")
        if not NAME_RE.fullmatch(name):
            raise gerr(400, "invalid", f"Invalid value for field 'resource.name': '{name}'. Must be a match of "
                                       "regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
        key = f"{p}/{name}"
        if key in self.firewalls:
            raise gerr(409, "alreadyExists", f"The resource 'projects/{p}/global/firewalls/{name}' already exists")
        net = self._tail(body.get("network") or "global/networks/default").rsplit("/", 1)[-1]
        if net != "default":
            raise not_found(f"projects/{p}/global/networks/{net}")
        fw = dict(body, kind="compute#firewall", id=self._id(), direction=body.get("direction", "INGRESS"),
                  network=self.link(f"projects/{p}/global/networks/{net}"),
                  selfLink=self.link(f"projects/{p}/global/firewalls/{name}"))
        self.firewalls[key] = fw
        return self._op(p, None, "insert", f"projects/{p}/global/firewalls/{name}", lambda: None)

    def firewall_get(self, req, m):
        p = self._project(m)
        fw = self.firewalls.get(f"{p}/{m['name']}")
        if fw is None:
            raise not_found(f"projects/{p}/global/firewalls/{m['name']}")
        return 200, fw

    def firewall_delete(self, req, m):
        p = self._project(m)
        key = f"{p}/{m['name']}"
        if key not in self.firewalls:
            raise not_found(f"projects/{p}/global/firewalls/{m['name']}")
        return self._op(p, None, "delete", f"projects/{p}/global/firewalls/{m['name']}",
                        lambda: self.firewalls.pop(key, None))

    # ---- instances ------------------------------------------------------------------------------
    def instance_insert(self, req, m):
        p, z = self._project(m), self._zone(m)
        body = req.json()
        name = body.get("name", "")
        path = f"projects/{p}/zones/{z}/instances/{name}"
        if not NAME_RE.fullmatch(name):
            raise gerr(400, "invalid", f"Invalid value for field 'resource.name': '{name}'. Must be a match of "
                                       "regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
        if f"{p}/{z}/{name}" in self.instances:
            raise gerr(409, "alreadyExists", f"The resource '{path}' already exists")
        mt = self._tail(body.get("machineType", "")).rsplit("/", 1)[-1]
        if mt not in MACHINE_TYPES:
            raise gerr(400, "invalid", f"Invalid value for field 'resource.machineType': '{body.get('machineType')}'."
                                       f" Machine type with name '{mt}' does not exist in zone '{z}'.")
        disks = body.get("disks") or []
        boot = next((d for d in disks if d.get("boot")), None)
        if boot is None:
            raise gerr(400, "invalid", "Invalid value for field 'resource.disks': ''. Boot disk must be specified.")
        init = boot.get("initializeParams") or {}
        src = self._tail(init.get("sourceImage", ""))
        mimg = re.fullmatch(r"projects/([^/]+)/global/images/(family/)?([^/]+)", src)
        try:
            if not mimg:
                raise not_found(src)
            self._image(mimg[1], family=mimg[3]) if mimg[2] else self._image(mimg[1], name=mimg[3])
        except Reply:
            raise gerr(400, "invalid", "Invalid value for field 'resource.disks[0].initializeParams.sourceImage': "
                                       f"'{init.get('sourceImage')}'. The referenced image resource cannot be "
                                       "found.") from None
        disk_name = init.get("diskName") or name
        dkey = f"{p}/{z}/{disk_name}"
        if dkey in self.disks:
            raise gerr(409, "alreadyExists", f"The resource 'projects/{p}/zones/{z}/disks/{disk_name}' already exists")
        dtype = self._tail(init.get("diskType") or "pd-standard").rsplit("/", 1)[-1]
        if dtype not in DISK_TYPES:
            raise gerr(400, "invalid", f"Invalid value for field 'resource.disks[0].initializeParams.diskType': "
                                       f"'{init.get('diskType')}'. Disk type '{dtype}' does not exist.")
        region = ZONES[z]
        quotas = {q["metric"]: q for q in self.region_get(req, {"project": p, "region": region})[1]["quotas"]}
        need = MACHINE_TYPES[mt][0]
        q = quotas["CPUS"]
        if q["usage"] + need > q["limit"]:
            raise gerr(403, "quotaExceeded", f"Quota 'CPUS' exceeded.  Limit: {q['limit']} in region {region}.")
        nics = body.get("networkInterfaces") or [{"network": "global/networks/default"}]
        wants_nat = any(n.get("accessConfigs") for n in nics)
        q = quotas["IN_USE_ADDRESSES"]
        if wants_nat and q["usage"] + 1 > q["limit"]:
            raise gerr(403, "quotaExceeded", f"Quota 'IN_USE_ADDRESSES' exceeded.  Limit: {q['limit']} in region "
                                             f"{region}.")
        for acc in body.get("guestAccelerators") or []:
            at = self._tail(acc.get("acceleratorType", "")).rsplit("/", 1)[-1]
            if at not in ACCELERATORS:
                raise gerr(400, "invalid", f"Invalid value for field 'resource.guestAccelerators[0].acceleratorType':"
                                           f" '{acc.get('acceleratorType')}'. Accelerator type '{at}' does not exist "
                                           f"in zone {z}.")
            metric = ACCELERATORS[at][0]
            q = quotas[metric]
            if q["usage"] + int(acc.get("acceleratorCount", 1)) > q["limit"]:
                raise gerr(403, "quotaExceeded", f"Quota '{metric}' exceeded.  Limit: {q['limit']} in region {region}.")
            if (body.get("scheduling") or {}).get("onHostMaintenance", "MIGRATE") == "MIGRATE":
                raise gerr(400, "invalid", "Instances with guest accelerators do not support live migration.")
        for n in nics:
            net = self._tail(n.get("network") or "global/networks/default").rsplit("/", 1)[-1]
            if net != "default":
                raise gerr(400, "invalid", f"Invalid value for field 'resource.networkInterfaces[0].network': "
                                           f"'{n.get('network')}'. The referenced network resource cannot be found.")
            n["network"] = self.link(f"projects/{p}/global/networks/default")
            n["subnetwork"] = self.link(f"projects/{p}/regions/{region}/subnetworks/default")
            n["networkIP"] = self.private_ips.take()
            n["name"] = "nic0"
            for a in n.get("accessConfigs") or []:
                a.setdefault("name", "External NAT")
                a.setdefault("type", "ONE_TO_ONE_NAT")
                a.setdefault("networkTier", "PREMIUM")
        disk_path = f"projects/{p}/zones/{z}/disks/{disk_name}"
        self.disks[dkey] = {"kind": "compute#disk", "id": self._id(), "name": disk_name, "status": "READY",
                            "sizeGb": str(init.get("diskSizeGb") or 10), "zone": self.link(f"projects/{p}/zones/{z}"),
                            "type": self.link(f"projects/{p}/zones/{z}/diskTypes/{dtype}"),
                            "sourceImage": self.link(src), "users": [self.link(path)],
                            "selfLink": self.link(disk_path)}
        inst = dict(body, kind="compute#instance", id=self._id(), status="PROVISIONING",
                    zone=self.link(f"projects/{p}/zones/{z}"),
                    machineType=self.link(f"projects/{p}/zones/{z}/machineTypes/{mt}"),
                    networkInterfaces=nics, selfLink=self.link(path),
                    creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00"),
                    disks=[{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE", "boot": True,
                            "index": 0, "deviceName": boot.get("deviceName") or disk_name,
                            "autoDelete": bool(boot.get("autoDelete", True)), "source": self.link(disk_path)}],
                    _type=mt, _zone=z)
        if "tags" in body:
            inst["tags"] = dict(body["tags"], fingerprint=secrets.token_urlsafe(8))
        if "metadata" in body:
            inst["metadata"] = dict(body["metadata"], fingerprint=secrets.token_urlsafe(8), kind="compute#metadata")
        self.instances[f"{p}/{z}/{name}"] = inst

        def done():
            inst["status"] = "RUNNING"
            self._nat_on(inst)
        return self._op(p, z, "insert", path, done)

    def _nat_on(self, inst):
        for n in inst["networkInterfaces"]:
            for a in n.get("accessConfigs") or []:
                if not a.get("natIP"):
                    a["natIP"] = self.public_ips.take()
                    a["_ephemeral"] = True

    def _nat_off(self, inst):
        for n in inst["networkInterfaces"]:
            for a in n.get("accessConfigs") or []:
                if a.pop("_ephemeral", False):
                    self.public_ips.release(a.pop("natIP", None))

    def _inst(self, m):
        p, z = self._project(m), self._zone(m)
        inst = self.instances.get(f"{p}/{z}/{m['name']}")
        if inst is None:
            raise not_found(f"projects/{p}/zones/{z}/instances/{m['name']}")
        return inst

    @staticmethod
    def _public(inst):
        return {k: v for k, v in inst.items() if not k.startswith("_")} | {
            "networkInterfaces": [dict(n, accessConfigs=[{k: v for k, v in a.items() if not k.startswith("_")}
                                                         for a in n.get("accessConfigs") or []])
                                  for n in inst["networkInterfaces"]]}

    def instance_get(self, req, m):
        return 200, self._public(self._inst(m))

    def instance_list(self, req, m):
        p, z = self._project(m), self._zone(m)
        items = [self._public(i) for k, i in self.instances.items() if k.startswith(f"{p}/{z}/")]
        return 200, {"kind": "compute#instanceList", "items": items, "id": f"projects/{p}/zones/{z}/instances",
                     "selfLink": self.link(f"projects/{p}/zones/{z}/instances")}

    def aggregated_instances(self, req, m):
        p = self._project(m)
        items: dict = {}
        for k, i in self.instances.items():
            if k.startswith(f"{p}/"):
                items.setdefault(f"zones/{i['_zone']}", {"instances": []})["instances"].append(self._public(i))
        return 200, {"kind": "compute#instanceAggregatedList", "items": items,
                     "id": f"projects/{p}/aggregated/instances"}

    def instance_delete(self, req, m):
        inst = self._inst(m)
        p, z, name = m["project"], m["zone"], m["name"]

        def done():
            self.instances.pop(f"{p}/{z}/{name}", None)
            self._nat_off(inst)
            for n in inst["networkInterfaces"]:
                self.private_ips.release(n.get("networkIP"))
            for d in inst["disks"]:
                key = f"{p}/{z}/{d['source'].rsplit('/', 1)[-1]}"
                disk = self.disks.get(key)
                if disk is None:
                    continue
                disk["users"] = [u for u in disk.get("users", []) if u != inst["selfLink"]]
                if d.get("autoDelete"):
                    self.disks.pop(key, None)
        inst["status"] = "STOPPING"
        return self._op(p, z, "delete", f"projects/{p}/zones/{z}/instances/{name}", done)

    def instance_action(self, req, m):
        inst = self._inst(m)
        p, z, name, action = m["project"], m["zone"], m["name"], m["action"]
        path = f"projects/{p}/zones/{z}/instances/{name}"
        if action == "stop":
            if inst["status"] in ("TERMINATED", "STOPPED"):
                return self._op(p, z, "stop", path, lambda: None)
            inst["status"] = "STOPPING"

            def done():
                inst["status"] = "TERMINATED"
                self._nat_off(inst)
        elif action == "start":
            if inst["status"] == "RUNNING":
                return self._op(p, z, "start", path, lambda: None)
            region = ZONES[z]
            q = {q["metric"]: q for q in self.region_get(req, {"project": p, "region": region})[1]["quotas"]}["CPUS"]
            if q["usage"] + MACHINE_TYPES[inst["_type"]][0] > q["limit"]:
                raise gerr(403, "quotaExceeded", f"Quota 'CPUS' exceeded.  Limit: {q['limit']} in region {region}.")
            inst["status"] = "STAGING"

            def done():
                inst["status"] = "RUNNING"
                self._nat_on(inst)
        else:  # reset
            if inst["status"] != "RUNNING":
                raise gerr(400, "resourceNotReady", f"The resource '{path}' is not ready")
            done = lambda: None  # noqa: E731
        return self._op(p, z, action, path, done)

    # ---- disks ---------------------------------------------------------------------------------------
    def disk_get(self, req, m):
        p, z = self._project(m), self._zone(m)
        d = self.disks.get(f"{p}/{z}/{m['name']}")
        if d is None:
            raise not_found(f"projects/{p}/zones/{z}/disks/{m['name']}")
        return 200, d

    def disk_delete(self, req, m):
        p, z = self._project(m), self._zone(m)
        key = f"{p}/{z}/{m['name']}"
        d = self.disks.get(key)
        path = f"projects/{p}/zones/{z}/disks/{m['name']}"
        if d is None:
            raise not_found(path)
        if d.get("users"):
            raise gerr(400, "resourceInUseByAnotherResource",
                       f"The disk resource '{path}' is already being used by '{self._tail(d['users'][0])}'")
        return self._op(p, z, "delete", path, lambda: self.disks.pop(key, None))

    routes = [
        ("POST", r"/token", token),
        ("GET", ZONE + r"/operations/(?P<op>[^/]+)", op_get),
        ("POST", ZONE + r"/operations/(?P<op>[^/]+)/wait", op_wait),
        ("GET", V1 + r"/global/operations/(?P<op>[^/]+)", op_get),
        ("POST", V1 + r"/global/operations/(?P<op>[^/]+)/wait", op_wait),
        ("GET", ZONE, zone_get),
        ("GET", V1 + r"/regions/(?P<region>[^/]+)", region_get),
        ("GET", ZONE + r"/machineTypes/(?P<name>[^/]+)", machine_type_get),
        ("GET", ZONE + r"/diskTypes/(?P<name>[^/]+)", disk_type_get),
        ("GET", ZONE + r"/acceleratorTypes/(?P<name>[^/]+)", accelerator_get),
        ("GET", V1 + r"/global/images/family/(?P<name>[^/]+)", image_family),
        ("GET", V1 + r"/global/images/(?P<name>[^/]+)", image_get),
        ("GET", V1 + r"/global/networks/(?P<name>[^/]+)", network_get),
        ("GET", V1 + r"/regions/(?P<region>[^/]+)/subnetworks/(?P<name>[^/]+)", subnetwork_get),
        ("GET", V1 + r"/regions/(?P<region>[^/]+)/addresses/(?P<name>[^/]+)", address_get),
        ("POST", V1 + r"/global/firewalls", firewall_insert),
        ("GET", V1 + r"/global/firewalls/(?P<name>[^/]+)", firewall_get),
        ("DELETE", V1 + r"/global/firewalls/(?P<name>[^/]+)", firewall_delete),
        ("GET", V1 + r"/aggregated/instances", aggregated_instances),
        ("GET", ZONE + r"/instances", instance_list),
        ("POST", ZONE + r"/instances", instance_insert),
        ("GET", ZONE + r"/instances/(?P<name>[^/]+)", instance_get),
        ("DELETE", ZONE + r"/instances/(?P<name>[^/]+)", instance_delete),
        ("POST", ZONE + r"/instances/(?P<name>[^/]+)/(?P<action>start|stop|reset)", instance_action),
        ("GET", ZONE + r"/disks/(?P<name>[^/]+)", disk_get),
        ("DELETE", ZONE + r"/disks/(?P<name>[^/]+)", disk_delete),
    ]

    def no_route(self, method, path):
        return gerr(404, "notFound", f"The requested URL {path} was not found on this server.")
