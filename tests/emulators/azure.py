"""A small stateful emulator of the Azure Resource Manager REST API, for the azure driver's tests.

Written from the public REST references (learn.microsoft.com/rest/api/compute, /network,
/resources) and served over TLS with a throw-away CA on 127.0.0.1, because azure-core
refuses bearer tokens over plain http. The real SDK clients talk to it unchanged
(`base_url=emu.url`, `connection_verify=emu.ca_pem`).

What it keeps: resource groups; virtual networks and subnets; network security groups;
public IPs (handed out from 127.40.0.0/24, so a VM's public address is a loopback one the
test gateway can forward to a real VM); NICs with private addresses from their subnet;
availability sets; VMs with power states and instance views; managed OS disks.
Long-running operations answer 201/202 with an absolute `Azure-AsyncOperation` URL whose
status is `InProgress` until `lro_seconds` have passed, then `Succeeded` (or `Failed`).
Errors use ARM's body `{"error": {"code", "message"}}` with the codes Azure sends:
ResourceGroupNotFound, ResourceNotFound, NicInUse, InUseSubnetCannotBeDeleted,
OperationNotAllowed (quota), PlatformImageNotFound, InvalidParameter (size),
InvalidAuthenticationToken, TooManyRequests (via faults).

Credentials: two token endpoints of azure-identity's chain are served — App Service
managed identity (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`) and Entra ID client credentials
(`/{tenant}/oauth2/v2.0/token`, for a typed client secret) — and every ARM call must carry
a token one of them issued.
"""
from __future__ import annotations

import ipaddress
import secrets
import time
import uuid

from .base import AddressPool, Emulator, Reply

SUBSCRIPTION = "00000000-0000-4000-8000-00000000a2e0"
TENANT = "11111111-1111-4111-8111-111111111111"
CLIENT_ID = "22222222-2222-4222-8222-222222222222"
CLIENT_SECRET = "emulator-client-secret"

SIZES = {
    "Standard_A2": (2, 3584), "Standard_B1s": (1, 1024), "Standard_B2s": (2, 4096),
    "Standard_D2_v2": (2, 7168), "Standard_D2s_v3": (2, 8192), "Standard_D4s_v3": (4, 16384),
    "Standard_NC6s_v3": (6, 114688),
}
IMAGES = {  # publisher:offer:sku -> versions
    ("canonical", "ubuntuserver", "18.04-lts"): ["18.04.202401161"],
    ("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"): ["22.04.202404090", "22.04.202405010"],
    ("debian", "debian-12", "12"): ["0.20240211.1654", "0.20240717.1811"],
}
LOCATIONS = ("westus", "eastus", "westeurope")

P = r"/subscriptions/(?P<sub>[^/]+)"
RG = P + r"/resourcegroups/(?P<rg>[^/]+)"
RES = RG + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)/(?P<type>[A-Za-z]+)/(?P<name>[^/]+)"
CHILD = RES + r"/(?P<ctype>subnets|versions|images)/(?P<cname>[^/]+)"
LOC = P + r"/providers/Microsoft\.(?P<ns>Compute|Network)/locations/(?P<loc>[^/]+)"
IMG = LOC + r"/publishers/(?P<pub>[^/]+)/artifacttypes/vmimage/offers/(?P<offer>[^/]+)/skus/(?P<sku>[^/]+)/versions"

TYPES = {  # lowercase ARM type -> (canonical namespace/type, long-running?)
    "virtualnetworks": ("Microsoft.Network/virtualNetworks", True),
    "networksecuritygroups": ("Microsoft.Network/networkSecurityGroups", True),
    "publicipaddresses": ("Microsoft.Network/publicIPAddresses", True),
    "networkinterfaces": ("Microsoft.Network/networkInterfaces", True),
    "availabilitysets": ("Microsoft.Compute/availabilitySets", False),
    "virtualmachines": ("Microsoft.Compute/virtualMachines", True),
    "disks": ("Microsoft.Compute/disks", True),
    "images": ("Microsoft.Compute/images", True),
    "galleries": ("Microsoft.Compute/galleries", True),
}


def err(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers)


def not_found(kind: str, name: str, rg: str) -> Reply:
    return err(404, "ResourceNotFound",
               f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. "
               "For more details please go to https://aka.ms/ARMResourceNotFound")


class AzureEmulator(Emulator):
    name = "azure"

    def __init__(self, tls_dir, *, public_pool: str = "127.40.0.0/24", lro_seconds: float = 0.0):
        from .base import make_test_ca

        self.ca_pem, cert, key = make_test_ca(tls_dir)
        super().__init__(tls=(cert, key))
        self.subscriptions = {SUBSCRIPTION}
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.identity_header = secrets.token_hex(8)
        self.tokens: set[str] = set()
        self.resources: dict[str, dict] = {}      # lower-case id -> resource JSON
        self.groups: dict[str, dict] = {}         # lower-case rg name -> resource group JSON
        self.ops: dict[str, dict] = {}
        self.lro_seconds = lro_seconds
        self.public_ips = AddressPool(public_pool, first=2)
        self.private_pools: dict[str, AddressPool] = {}
        self.quota = {"cores": 20, "virtualMachines": 25, "PublicIPAddresses": 10}
        self.tokens_issued = 0

    # ---- credentials --------------------------------------------------------------------
    def identity_env(self) -> dict:
        """Environment for azure-identity's App Service managed identity (part of the default chain)."""
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.identity_header}

    def is_token_request(self, method, path):
        p = path.lower()
        return p.startswith("/msi/") or "/oauth2/" in p or "/.well-known/" in p or "/discovery/" in p

    def authenticate(self, h, method, path):
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise err(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if auth[7:] not in self.tokens:
            raise err(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def issue(self, resource: str) -> dict:
        token = "emu-" + secrets.token_hex(16)
        self.tokens.add(token)
        self.tokens_issued += 1
        return {"token_type": "Bearer", "access_token": token, "expires_in": 3599, "ext_expires_in": 3599,
                "expires_on": str(int(time.time()) + 3599), "resource": resource}

    def msi_token(self, req, m):
        if req.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            raise Reply(400, {"statusCode": 400, "message": "Invalid X-IDENTITY-HEADER", "correlationId": str(uuid.uuid4())})
        return 200, self.issue(req.query.get("resource", ""))

    def openid(self, req, m):
        t = m["tenant"]
        base = f"{self.url}/{t}"
        return 200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                     "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                     "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                     "issuer": f"{base}/v2.0", "tenant_region_scope": "WW",
                     "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                     "jwks_uri": f"{base}/discovery/v2.0/keys",
                     "response_types_supported": ["code", "id_token", "token"],
                     "scopes_supported": ["openid"], "subject_types_supported": ["pairwise"],
                     "id_token_signing_alg_values_supported": ["RS256"]}

    def client_token(self, req, m):
        form = req.body if isinstance(req.body, dict) else {}
        cid, secret = form.get("client_id"), form.get("client_secret")
        if m["tenant"] != TENANT:
            raise Reply(400, {"error": "invalid_request", "error_codes": [90002],
                              "error_description": f"AADSTS90002: Tenant '{m['tenant']}' not found."})
        if cid not in self.clients:
            raise Reply(400, {"error": "unauthorized_client", "error_codes": [700016],
                              "error_description": f"AADSTS700016: Application with identifier '{cid}' was not "
                                                   f"found in the directory '{TENANT}'."})
        if self.clients[cid] != secret:
            raise Reply(401, {"error": "invalid_client", "error_codes": [7000215],
                              "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the "
                                                   "secret being sent in the request is the client secret value, "
                                                   f"not the client secret ID, for a secret added to app '{cid}'."})
        return 200, self.issue(form.get("scope", ""))

    # ---- long-running operations ----------------------------------------------------------
    def _op(self, done, *, location: bool = False, status: int = 202, body=None, error=None):
        op_id = uuid.uuid4().hex
        self.ops[op_id] = {"status": "InProgress", "at": time.monotonic() + self.lro_seconds, "done": done,
                           "error": error, "started": time.time()}
        headers = {"Azure-AsyncOperation": f"{self.url}/operations/{op_id}", "retry-after-ms": "10"}
        if location:
            headers["Location"] = f"{self.url}/operations/{op_id}/result"
        return status, body, headers

    def advance(self, force: bool = False):
        now = time.monotonic()
        for op in self.ops.values():
            if op["status"] == "InProgress" and (force or now >= op["at"]):
                try:
                    op["done"]()
                    op["status"] = "Failed" if op["error"] else "Succeeded"
                except Reply as r:
                    op["status"] = "Failed"
                    op["error"] = (r.body or {}).get("error")

    def settle(self):
        """Finish every operation in flight (what Azure does whether or not anyone is polling)."""
        with self.lock:
            self.advance(force=True)

    def op_status(self, req, m):
        op = self.ops.get(m["op"])
        if op is None:
            raise err(404, "NotFound", "The operation was not found.")
        out = {"name": m["op"], "status": op["status"], "startTime": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(op["started"]))}
        if op["status"] == "Failed":
            out["error"] = op["error"]
        return 200, out, ({"retry-after-ms": "10"} if op["status"] == "InProgress" else {})

    def op_result(self, req, m):
        op = self.ops.get(m["op"])
        if op is None:
            raise err(404, "NotFound", "The operation was not found.")
        if op["status"] == "InProgress":
            return 202, None, {"Location": f"{self.url}/operations/{m['op']}/result", "retry-after-ms": "10"}
        if op["status"] == "Failed":
            raise Reply(400, {"error": op["error"]})
        return 204, None

    # ---- helpers -------------------------------------------------------------------------
    def _sub(self, sub):
        if sub.lower() not in {s.lower() for s in self.subscriptions}:
            raise err(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")

    def _group(self, sub, rg):
        self._sub(sub)
        g = self.groups.get(rg.lower())
        if g is None:
            raise err(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return g

    def rid(self, sub, rg, kind, name, child=None):
        ns_type = TYPES[kind.lower()][0]
        out = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns_type}/{name}"
        if child:
            out += f"/{child[0]}/{child[1]}"
        return out

    def get(self, rid: str) -> dict | None:
        return self.resources.get(rid.lower())

    def _ref(self, ref: dict | None, what: str) -> dict:
        rid = (ref or {}).get("id", "")
        res = self.get(rid)
        if res is None:
            raise err(400, "InvalidResourceReference",
                      f"Resource {rid} referenced by resource {what} was not found. Please make sure that the "
                      "referenced resource exists, and that both resources are in the same region.")
        return res

    def _location(self, body):
        loc = (body.get("location") or "").lower().replace(" ", "")
        if loc not in LOCATIONS:
            raise err(400, "LocationNotAvailableForResourceType",
                      f"The provided location '{body.get('location')}' is not available for resource type. "
                      f"List of available regions is '{','.join(LOCATIONS)}'.")
        return loc

    def owned(self) -> list[str]:
        """Every resource id and group the emulator holds (what a test expects to be empty)."""
        with self.lock:
            return sorted([r["id"] for r in self.resources.values()] + [g["id"] for g in self.groups.values()])

    # ---- resource groups -----------------------------------------------------------------
    def rg_put(self, req, m):
        self._sub(m["sub"])
        body = req.json()
        loc = self._location(body)
        existing = self.groups.get(m["rg"].lower())
        g = existing or {"id": f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}", "name": m["rg"],
                         "type": "Microsoft.Resources/resourceGroups", "location": loc,
                         "properties": {"provisioningState": "Succeeded"}}
        g["tags"] = body.get("tags") or g.get("tags") or {}
        self.groups[m["rg"].lower()] = g
        return (200 if existing else 201), g

    def rg_get(self, req, m):
        g = self._group(m["sub"], m["rg"])
        return (204 if req.method == "HEAD" else 200), (None if req.method == "HEAD" else g)

    def rg_delete(self, req, m):
        self._group(m["sub"], m["rg"])
        prefix = f"/subscriptions/{m['sub']}/resourcegroups/{m['rg']}/".lower()

        def done():
            for rid in [k for k in self.resources if k.startswith(prefix)]:
                self._drop(rid)
            self.groups.pop(m["rg"].lower(), None)
        return self._op(done, location=True)

    def rg_resources(self, req, m):
        self._group(m["sub"], m["rg"])
        prefix = f"/subscriptions/{m['sub']}/resourcegroups/{m['rg']}/".lower()
        out = [{"id": r["id"], "name": r["name"], "type": r["type"], "location": r.get("location")}
               for k, r in self.resources.items() if k.startswith(prefix) and k.count("/") == 8]
        return 200, {"value": out}

    # ---- generic resources ---------------------------------------------------------------
    def res_get(self, req, m):
        self._group(m["sub"], m["rg"])
        kind = m["type"].lower()
        if kind not in TYPES:
            raise err(400, "InvalidResourceType", f"The resource type '{m['type']}' could not be found in the "
                                                   f"namespace '{m['ns']}'.")
        res = self.get(self.rid(m["sub"], m["rg"], kind, m["name"]))
        if res is None:
            raise not_found(TYPES[kind][0], m["name"], m["rg"])
        if kind == "virtualmachines" and "instanceview" in req.query.get("$expand", "").lower():
            res = dict(res, properties=dict(res["properties"], instanceView=self._instance_view(res)))
        return 200, res

    def res_list(self, req, m):
        self._group(m["sub"], m["rg"])
        kind = m["type"].lower()
        canonical = TYPES[kind][0].lower()
        return 200, {"value": [r for r in self.resources.values()
                               if r["type"].lower() == canonical and r["id"].lower().split("/")[4] == m["rg"].lower()]}

    def res_put(self, req, m):
        self._group(m["sub"], m["rg"])
        kind = m["type"].lower()
        if kind not in TYPES:
            raise err(400, "InvalidResourceType", f"The resource type '{m['type']}' could not be found.")
        ns_type, lro = TYPES[kind]
        rid = self.rid(m["sub"], m["rg"], kind, m["name"])
        body = req.json()
        loc = self._location(body)
        existing = self.get(rid)
        res = {"id": rid, "name": m["name"], "type": ns_type, "location": loc, "tags": body.get("tags") or {},
               "properties": dict(body.get("properties") or {})}
        for k in ("zones", "sku", "identity", "plan"):
            if k in body:
                res[k] = body[k]
        getattr(self, f"_put_{kind}", lambda res, existing, m: None)(res, existing, m)
        res["properties"]["provisioningState"] = "Updating" if existing else "Creating"
        if lro:
            res["etag"] = f'W/"{uuid.uuid4()}"'
        self.resources[rid.lower()] = res
        if not lro:
            res["properties"].pop("provisioningState", None)
            return 200, res   # availabilitySets: 200 only (the reference lists no 201)

        def done():
            res["properties"]["provisioningState"] = "Succeeded"
            getattr(self, f"_done_{kind}", lambda res: None)(res)
        return self._op(done, status=200 if existing else 201, body=res)

    def res_delete(self, req, m):
        self._group(m["sub"], m["rg"])
        kind = m["type"].lower()
        rid = self.rid(m["sub"], m["rg"], kind, m["name"])
        res = self.get(rid)
        if res is None:
            return 204, None
        getattr(self, f"_check_delete_{kind}", lambda res: None)(res)
        if not TYPES[kind][1]:
            self._drop(rid.lower())
            return 200, None
        res["properties"]["provisioningState"] = "Deleting"
        return self._op(lambda: self._drop(rid.lower()), location=True)

    def _drop(self, key: str):
        res = self.resources.pop(key, None)
        if res is None:
            return
        kind = res["type"].split("/")[-1].lower()
        getattr(self, f"_dropped_{kind}", lambda res: None)(res)

    # ---- virtual networks and subnets ----------------------------------------------------
    def _put_virtualnetworks(self, res, existing, m):
        prefixes = (res["properties"].get("addressSpace") or {}).get("addressPrefixes") or []
        try:
            [ipaddress.ip_network(p) for p in prefixes]
        except ValueError:
            raise err(400, "InvalidAddressPrefixFormat", f"Address prefix {prefixes} of resource {res['id']} is "
                                                         "not formatted correctly.") from None
        inline = res["properties"].pop("subnets", None) or []
        res["properties"]["subnets"] = []
        for s in inline:
            self._subnet(res, s["name"], s.get("properties") or {})

    def _subnet(self, vnet, name, props):
        sid = f"{vnet['id']}/subnets/{name}"
        prefix = props.get("addressPrefix") or ""
        try:
            net = ipaddress.ip_network(prefix)
        except ValueError:
            raise err(400, "InvalidAddressPrefixFormat",
                      f"Address prefix {prefix} of resource {sid} is not formatted correctly.") from None
        spaces = [ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
        if not any(net.subnet_of(s) for s in spaces):
            raise err(400, "NetcfgSubnetRangeOutsideVnet",
                      f"Subnet '{name}' is not valid because its IP address range is outside the IP address range "
                      f"of virtual network '{vnet['name']}'.")
        sub = {"id": sid, "name": name, "type": "Microsoft.Network/virtualNetworks/subnets",
               "properties": dict(props, provisioningState="Succeeded", ipConfigurations=[])}
        old = self.get(sid)
        if old:
            sub["properties"]["ipConfigurations"] = old["properties"].get("ipConfigurations", [])
        self.resources[sid.lower()] = sub
        self.private_pools.setdefault(sid.lower(), AddressPool(prefix, first=4))
        refs = vnet["properties"].setdefault("subnets", [])
        if not any(r["id"].lower() == sid.lower() for r in refs):
            refs.append({"id": sid, "name": name})
        return sub

    def subnet_put(self, req, m):
        self._group(m["sub"], m["rg"])
        vid = self.rid(m["sub"], m["rg"], "virtualnetworks", m["name"])
        vnet = self.get(vid)
        if vnet is None:
            raise not_found("Microsoft.Network/virtualNetworks", m["name"], m["rg"])
        existed = self.get(f"{vid}/subnets/{m['cname']}") is not None
        sub = self._subnet(vnet, m["cname"], dict(req.json().get("properties") or {}))
        sub["properties"]["provisioningState"] = "Updating" if existed else "Creating"

        def done():
            sub["properties"]["provisioningState"] = "Succeeded"
        return self._op(done, status=200 if existed else 201, body=sub)

    def subnet_get(self, req, m):
        self._group(m["sub"], m["rg"])
        vid = self.rid(m["sub"], m["rg"], "virtualnetworks", m["name"])
        if self.get(vid) is None:
            raise not_found("Microsoft.Network/virtualNetworks", m["name"], m["rg"])
        sub = self.get(f"{vid}/subnets/{m['cname']}")
        if sub is None:
            raise not_found("Microsoft.Network/virtualNetworks/subnets", f"{m['name']}/{m['cname']}", m["rg"])
        return 200, sub

    def subnet_delete(self, req, m):
        self._group(m["sub"], m["rg"])
        vid = self.rid(m["sub"], m["rg"], "virtualnetworks", m["name"])
        sid = f"{vid}/subnets/{m['cname']}"
        sub = self.get(sid)
        if sub is None:
            return 204, None
        self._check_subnet_free(sub)
        return self._op(lambda: self._drop(sid.lower()), location=True)

    def _check_subnet_free(self, sub):
        if sub["properties"].get("ipConfigurations"):
            used = sub["properties"]["ipConfigurations"][0]["id"]
            raise err(400, "InUseSubnetCannotBeDeleted",
                      f"Subnet {sub['name']} is in use by {used} and cannot be deleted. In order to delete the "
                      "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.")

    def _check_delete_virtualnetworks(self, res):
        for ref in res["properties"].get("subnets", []):
            sub = self.get(ref["id"])
            if sub:
                self._check_subnet_free(sub)

    def _dropped_virtualnetworks(self, res):
        for ref in res["properties"].get("subnets", []):
            self.resources.pop(ref["id"].lower(), None)

    def _dropped_subnets(self, res):
        vnet = self.get(res["id"].rsplit("/subnets/", 1)[0])
        if vnet:
            vnet["properties"]["subnets"] = [r for r in vnet["properties"]["subnets"]
                                             if r["id"].lower() != res["id"].lower()]
        self.private_pools.pop(res["id"].lower(), None)

    # ---- network security groups ----------------------------------------------------------
    def _put_networksecuritygroups(self, res, existing, m):
        seen = set()
        for rule in res["properties"].get("securityRules") or []:
            p = rule.get("properties") or {}
            prio = p.get("priority")
            if not isinstance(prio, int) or not 100 <= prio <= 4096:
                raise err(400, "SecurityRuleInvalidPriority",
                          f"Security rule {rule.get('name')} has invalid Priority. Value provided: {prio} "
                          "Allowed range 100-4096.")
            if (prio, p.get("direction")) in seen:
                raise err(400, "SecurityRuleConflict",
                          f"Security rule {rule.get('name')} conflicts with another rule: priority {prio}.")
            seen.add((prio, p.get("direction")))
            rule["id"] = f"{res['id']}/securityRules/{rule.get('name')}"
            p["provisioningState"] = "Succeeded"
        res["properties"]["networkInterfaces"] = (existing or {}).get("properties", {}).get("networkInterfaces", [])

    def _check_delete_networksecuritygroups(self, res):
        if res["properties"].get("networkInterfaces"):
            raise err(400, "InUseNetworkSecurityGroupCannotBeDeleted",
                      f"Network security group {res['id']} cannot be deleted because it is in use by the following "
                      f"resources: {res['properties']['networkInterfaces'][0]['id']}. In order to delete the Network "
                      "security group, remove the association with the resource(s).")

    # ---- public IPs -------------------------------------------------------------------------
    def _put_publicipaddresses(self, res, existing, m):
        count = sum(1 for r in self.resources.values() if r["type"] == "Microsoft.Network/publicIPAddresses"
                    and r["location"] == res["location"])
        if not existing and count >= self.quota["PublicIPAddresses"]:
            raise err(400, "PublicIPCountLimitReached",
                      f"Cannot create more than {self.quota['PublicIPAddresses']} public IP addresses for this "
                      f"subscription in this region.")
        p = res["properties"]
        method = p.get("publicIPAllocationMethod") or "Dynamic"
        if (res.get("sku") or {}).get("name") == "Standard" and method != "Static":
            raise err(400, "StandardSkuPublicIPAddressesCanNotHaveDynamicAllocation",
                      "Standard sku publicIp /subscriptions/... must be Static")
        p["publicIPAllocationMethod"] = method
        old = (existing or {}).get("properties", {})
        p["ipConfiguration"] = old.get("ipConfiguration")
        p["ipAddress"] = old.get("ipAddress") or (self.public_ips.take() if method == "Static" else None)
        if not p["ipAddress"]:
            p.pop("ipAddress")
        if p.get("dnsSettings", {}).get("domainNameLabel"):
            p["dnsSettings"]["fqdn"] = f"{p['dnsSettings']['domainNameLabel']}.{res['location']}.cloudapp.azure.com"

    def _check_delete_publicipaddresses(self, res):
        if res["properties"].get("ipConfiguration"):
            raise err(400, "PublicIPAddressInUse",
                      f"Public IP address {res['id']} can not be deleted since it is still allocated to resource "
                      f"{res['properties']['ipConfiguration']['id']}. In order to delete the public IP, "
                      "disassociate/detach the Public IP address from the resource.")

    def _dropped_publicipaddresses(self, res):
        self.public_ips.release(res["properties"].get("ipAddress"))

    # ---- NICs --------------------------------------------------------------------------------
    def _put_networkinterfaces(self, res, existing, m):
        p = res["properties"]
        configs = p.get("ipConfigurations") or []
        if not configs:
            raise err(400, "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
                      f"Network interface {res['id']} must have one or more IP configurations.")
        if p.get("networkSecurityGroup"):
            self._ref(p["networkSecurityGroup"], res["id"])
        for cfg in configs:
            cfg["id"] = f"{res['id']}/ipConfigurations/{cfg.get('name', 'ipconfig1')}"
            cp = cfg.setdefault("properties", {})
            subnet = self._ref(cp.get("subnet"), res["id"])
            if cp.get("publicIPAddress"):
                pip = self._ref(cp["publicIPAddress"], res["id"])
                other = pip["properties"].get("ipConfiguration")
                if other and not other["id"].lower().startswith(res["id"].lower()):
                    raise err(400, "PublicIPAddressInUse",
                              f"Resource {pip['id']} is referenced by {other['id']} and cannot be used by {cfg['id']}.")
            old = next((c for c in (existing or {}).get("properties", {}).get("ipConfigurations", [])
                        if c["id"] == cfg["id"]), None)
            pool = self.private_pools[subnet["id"].lower()]
            if old:
                cp["privateIPAddress"] = old["properties"]["privateIPAddress"]
            elif cp.get("privateIPAllocationMethod") == "Static":
                want = cp.get("privateIPAddress")
                try:
                    ok = ipaddress.ip_address(want) in pool.net
                    pool.take(want)
                except ValueError:
                    ok = False
                if not ok:
                    raise err(400, "PrivateIPAddressNotInSubnet" if want else "InvalidRequestFormat",
                              f"IP configuration {cfg['id']} references the private IP address {want} which is not "
                              f"available or not in the subnet {subnet['id']}.")
            else:
                cp["privateIPAllocationMethod"] = "Dynamic"
                cp["privateIPAddress"] = pool.take()
            cp["provisioningState"] = "Succeeded"
        p["virtualMachine"] = (existing or {}).get("properties", {}).get("virtualMachine")
        if not p["virtualMachine"]:
            p.pop("virtualMachine")

    def _done_networkinterfaces(self, res):
        p = res["properties"]
        for cfg in p["ipConfigurations"]:
            cp = cfg["properties"]
            sub = self.get(cp["subnet"]["id"])
            if sub is not None and not any(r["id"] == cfg["id"] for r in sub["properties"]["ipConfigurations"]):
                sub["properties"]["ipConfigurations"].append({"id": cfg["id"]})
            if cp.get("publicIPAddress"):
                pip = self.get(cp["publicIPAddress"]["id"])
                if pip is not None:
                    pip["properties"]["ipConfiguration"] = {"id": cfg["id"]}
        if p.get("networkSecurityGroup"):
            nsg = self.get(p["networkSecurityGroup"]["id"])
            if nsg is not None and not any(r["id"] == res["id"] for r in nsg["properties"]["networkInterfaces"]):
                nsg["properties"]["networkInterfaces"].append({"id": res["id"]})

    def _check_delete_networkinterfaces(self, res):
        vm = res["properties"].get("virtualMachine")
        if vm:
            raise err(400, "NicInUse",
                      f"Network Interface {res['id']} is used by existing resource {vm['id']}. In order to delete "
                      "the network interface, it must be dissociated from the resource. To learn more, see "
                      "aka.ms/deletenic.")

    def _dropped_networkinterfaces(self, res):
        for cfg in res["properties"]["ipConfigurations"]:
            cp = cfg["properties"]
            sub = self.get(cp["subnet"]["id"])
            if sub is not None:
                sub["properties"]["ipConfigurations"] = [r for r in sub["properties"]["ipConfigurations"]
                                                         if r["id"] != cfg["id"]]
            pool = self.private_pools.get(cp["subnet"]["id"].lower())
            if pool:
                pool.release(cp.get("privateIPAddress"))
            if cp.get("publicIPAddress"):
                pip = self.get(cp["publicIPAddress"]["id"])
                if pip is not None:
                    pip["properties"]["ipConfiguration"] = None
        nsg_ref = res["properties"].get("networkSecurityGroup")
        nsg = self.get(nsg_ref["id"]) if nsg_ref else None
        if nsg is not None:
            nsg["properties"]["networkInterfaces"] = [r for r in nsg["properties"]["networkInterfaces"]
                                                      if r["id"] != res["id"]]

    # ---- availability sets ---------------------------------------------------------------------
    def _put_availabilitysets(self, res, existing, m):
        p = res["properties"]
        p.setdefault("platformFaultDomainCount", 2)
        p.setdefault("platformUpdateDomainCount", 5)
        p["virtualMachines"] = (existing or {}).get("properties", {}).get("virtualMachines", [])

    def _check_delete_availabilitysets(self, res):
        if res["properties"].get("virtualMachines"):
            raise err(409, "OperationNotAllowed",
                      f"Availability set {res['name']} cannot be deleted. Before deleting an availability set please "
                      "ensure that it does not contain any VM.")

    # ---- virtual machines --------------------------------------------------------------------
    def _cores_in_use(self, loc):
        return sum(SIZES.get(r["properties"]["hardwareProfile"]["vmSize"], (0, 0))[0]
                   for r in self.resources.values()
                   if r["type"] == "Microsoft.Compute/virtualMachines" and r["location"] == loc
                   and r.get("_power") not in ("deallocated", "deallocating"))

    def _put_virtualmachines(self, res, existing, m):
        if existing:
            raise err(409, "OperationNotAllowed", "This emulator does not update virtual machines.")
        p = res["properties"]
        size = (p.get("hardwareProfile") or {}).get("vmSize", "")
        if size not in SIZES:
            raise err(400, "InvalidParameter",
                      f"The value {size} provided for the VM size is not valid. The valid sizes in the current region "
                      "are: " + ", ".join(SIZES) + ".")
        loc = res["location"]
        used, limit = self._cores_in_use(loc), self.quota["cores"]
        need = SIZES[size][0]
        if used + need > limit:
            raise err(409, "OperationNotAllowed",
                      f"Operation could not be completed as it results in exceeding approved Total Regional Cores "
                      f"quota. Additional details - Deployment Model: Resource Manager, Location: {loc}, Current Limit: "
                      f"{limit}, Current Usage: {used}, Additional Required: {need}, (Minimum) New Limit Required: "
                      f"{used + need}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/"
                      "Microsoft_Azure_Capacity/UsageAndQuota.ReactView.")
        storage = p.get("storageProfile") or {}
        ref = storage.get("imageReference") or {}
        if ref.get("id"):
            if self.get(ref["id"]) is None:
                raise err(404, "NotFound", f"The gallery image {ref['id']} is not available in {loc} region.")
        else:
            key = (ref.get("publisher", "").lower(), ref.get("offer", "").lower(), ref.get("sku", "").lower())
            versions = IMAGES.get(key)
            if not versions or (ref.get("version", "latest") != "latest" and ref.get("version") not in versions):
                urn = ":".join([ref.get("publisher", ""), ref.get("offer", ""), ref.get("sku", ""),
                                ref.get("version", "")])
                raise err(404, "PlatformImageNotFound",
                          f"The platform image '{urn}' is not available. Verify that all fields in the storage "
                          "profile are correct. For more details about storage profile information, please refer "
                          "to https://aka.ms/storageprofile")
        nics = (p.get("networkProfile") or {}).get("networkInterfaces") or []
        if not nics:
            raise err(400, "InvalidParameter", "At least one network interface is required.")
        for ref_ in nics:
            nic = self._ref(ref_, res["id"])
            if nic["properties"].get("virtualMachine"):
                raise err(400, "NicInUse", f"Network Interface {nic['id']} is used by existing resource "
                                           f"{nic['properties']['virtualMachine']['id']}.")
        linux = ((p.get("osProfile") or {}).get("linuxConfiguration") or {})
        if linux.get("disablePasswordAuthentication") and not (linux.get("ssh") or {}).get("publicKeys"):
            raise err(400, "InvalidParameter", "Required parameter 'sshPublicKey' is missing (null).")
        if (p.get("osProfile") or {}).get("adminUsername") in ("root", "admin", "administrator"):
            raise err(400, "InvalidParameter", "The Admin Username specified is not allowed.")
        if p.get("availabilitySet"):
            self._ref(p["availabilitySet"], res["id"])
            if res.get("zones"):
                raise err(400, "InvalidParameter", "Availability Zone and Availability Set cannot both be set.")
        os_disk = storage.setdefault("osDisk", {})
        os_disk.setdefault("name", f"{res['name']}_OsDisk_1_{uuid.uuid4().hex}")
        sku = ((os_disk.get("managedDisk") or {}).get("storageAccountType")) or "Standard_LRS"
        did = self.rid(m["sub"], m["rg"], "disks", os_disk["name"])
        if self.get(did) is not None:
            raise err(409, "ConflictingUserInput", f"Disk {os_disk['name']} already exists in resource group "
                                                   f"{m['rg'].upper()}. Only CreateOption.Attach is supported.")
        os_disk.setdefault("managedDisk", {})["id"] = did
        os_disk["managedDisk"]["storageAccountType"] = sku
        p["vmId"] = str(uuid.uuid4())
        res["_power"] = "creating"
        disk = {"id": did, "name": os_disk["name"], "type": "Microsoft.Compute/disks", "location": loc,
                "sku": {"name": sku}, "tags": {}, "managedBy": res["id"],
                "properties": {"diskSizeGB": os_disk.get("diskSizeGB") or 30, "osType": "Linux",
                               "diskState": "Attached", "provisioningState": "Succeeded"}}
        self.resources[did.lower()] = disk
        for ref_ in nics:
            self.get(ref_["id"])["properties"]["virtualMachine"] = {"id": res["id"]}
        if p.get("availabilitySet"):
            self.get(p["availabilitySet"]["id"])["properties"]["virtualMachines"].append({"id": res["id"]})

    def _done_virtualmachines(self, res):
        self._power_on(res)

    def _power_on(self, res):
        res["_power"] = "running"
        for pip in self._vm_public_ips(res):
            if not pip["properties"].get("ipAddress"):
                pip["properties"]["ipAddress"] = self.public_ips.take()

    def _vm_public_ips(self, res):
        out = []
        for ref in res["properties"]["networkProfile"]["networkInterfaces"]:
            nic = self.get(ref["id"])
            for cfg in (nic or {}).get("properties", {}).get("ipConfigurations", []):
                pref = cfg["properties"].get("publicIPAddress")
                pip = self.get(pref["id"]) if pref else None
                if pip is not None:
                    out.append(pip)
        return out

    def _release_dynamic(self, res):
        for pip in self._vm_public_ips(res):
            if pip["properties"]["publicIPAllocationMethod"] == "Dynamic":
                self.public_ips.release(pip["properties"].pop("ipAddress", None))

    def _check_delete_disks(self, res):
        if res.get("managedBy"):
            raise err(409, "OperationNotAllowed",
                      f"Disk {res['name']} is attached to VM {res['managedBy']}.")

    def _dropped_virtualmachines(self, res):
        p = res["properties"]
        self._release_dynamic(res)
        disk_ref = p["storageProfile"]["osDisk"]["managedDisk"]["id"]
        disk = self.get(disk_ref)
        if disk is not None:
            disk["managedBy"] = None
            disk["properties"]["diskState"] = "Unattached"
            if p["storageProfile"]["osDisk"].get("deleteOption") == "Delete":
                self.resources.pop(disk_ref.lower(), None)
        for ref in p["networkProfile"]["networkInterfaces"]:
            nic = self.get(ref["id"])
            if nic is not None:
                nic["properties"].pop("virtualMachine", None)
                if (ref.get("properties") or {}).get("deleteOption") == "Delete":
                    self._drop(ref["id"].lower())
        if p.get("availabilitySet"):
            aset = self.get(p["availabilitySet"]["id"])
            if aset is not None:
                aset["properties"]["virtualMachines"] = [v for v in aset["properties"]["virtualMachines"]
                                                         if v["id"] != res["id"]]

    def _instance_view(self, res):
        power = res.get("_power", "running")
        ps = res["properties"].get("provisioningState", "Succeeded")
        statuses = [{"code": f"ProvisioningState/{ps.lower()}", "level": "Info",
                     "displayStatus": f"Provisioning {ps.lower()}"}]
        if power != "creating":
            statuses.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"})
        return {"computerName": res["properties"].get("osProfile", {}).get("computerName", res["name"]),
                "osName": "debian", "statuses": statuses}

    def _vm(self, m):
        self._group(m["sub"], m["rg"])
        res = self.get(self.rid(m["sub"], m["rg"], "virtualmachines", m["name"]))
        if res is None:
            raise not_found("Microsoft.Compute/virtualMachines", m["name"], m["rg"])
        return res

    def vm_instance_view(self, req, m):
        return 200, self._instance_view(self._vm(m))

    def vm_action(self, req, m):
        res = self._vm(m)
        action = m["action"].lower()
        if res["properties"].get("provisioningState") in ("Creating", "Deleting"):
            raise err(409, "OperationNotAllowed", f"Operation '{m['action']}' is not allowed since the VM "
                                                  f"{res['name']} is being {res['properties']['provisioningState'].lower()}.")
        if action == "start":
            if res["_power"] == "deallocated":
                size = res["properties"]["hardwareProfile"]["vmSize"]
                used, limit = self._cores_in_use(res["location"]), self.quota["cores"]
                if used + SIZES[size][0] > limit:
                    raise err(409, "OperationNotAllowed", "Operation could not be completed as it results in "
                                                          "exceeding approved Total Regional Cores quota.")
            res["_power"] = "starting"
            done = lambda: self._power_on(res)  # noqa: E731
        elif action == "poweroff":
            res["_power"] = "stopping"
            done = lambda: res.update(_power="stopped")  # noqa: E731
        elif action == "deallocate":
            res["_power"] = "deallocating"

            def done():
                res["_power"] = "deallocated"
                self._release_dynamic(res)
        else:  # restart
            if res["_power"] != "running":
                raise err(409, "OperationNotAllowed", f"Cannot restart the VM {res['name']} as it is not running. "
                                                      "Please start the VM and try again.")
            done = lambda: None  # noqa: E731
        return self._op(done, location=True)

    def vm_list_all(self, req, m):
        self._sub(m["sub"])
        out = []
        for r in self.resources.values():
            if r["type"] != "Microsoft.Compute/virtualMachines":
                continue
            if req.query.get("statusOnly") == "true":
                r = dict(r, properties=dict(r["properties"], instanceView=self._instance_view(r)))
            out.append(r)
        return 200, {"value": out}

    # ---- catalogue: sizes, usages, images ----------------------------------------------------
    def _loc(self, m):
        self._sub(m["sub"])
        if m["loc"].lower() not in LOCATIONS:
            raise err(404, "NoRegisteredProviderFound", f"No registered resource provider found for location "
                                                        f"'{m['loc']}'.")
        return m["loc"].lower()

    def sizes(self, req, m):
        self._loc(m)
        return 200, {"value": [{"name": n, "numberOfCores": c, "memoryInMB": mem, "maxDataDiskCount": 4,
                                "osDiskSizeInMB": 1047552, "resourceDiskSizeInMB": 16384}
                               for n, (c, mem) in SIZES.items()]}

    def usages(self, req, m):
        loc = self._loc(m)
        base = f"/subscriptions/{m['sub']}/providers/Microsoft.{m['ns']}/locations/{loc}/usages"
        if m["ns"].lower() == "network":
            used = sum(1 for r in self.resources.values() if r["type"] == "Microsoft.Network/publicIPAddresses"
                       and r["location"] == loc)
            return 200, {"value": [{"id": f"{base}/PublicIPAddresses", "currentValue": used,
                                    "limit": self.quota["PublicIPAddresses"], "unit": "Count",
                                    "name": {"value": "PublicIPAddresses",
                                             "localizedValue": "Public IP Addresses"}}]}
        vms = sum(1 for r in self.resources.values() if r["type"] == "Microsoft.Compute/virtualMachines"
                  and r["location"] == loc)
        return 200, {"value": [
            {"currentValue": self._cores_in_use(loc), "limit": self.quota["cores"], "unit": "Count",
             "name": {"value": "cores", "localizedValue": "Total Regional vCPUs"}},
            {"currentValue": vms, "limit": self.quota["virtualMachines"], "unit": "Count",
             "name": {"value": "virtualMachines", "localizedValue": "Virtual Machines"}}]}

    def image_versions(self, req, m):
        loc = self._loc(m)
        versions = IMAGES.get((m["pub"].lower(), m["offer"].lower(), m["sku"].lower()))
        if versions is None:
            raise err(404, "NotFound", "Artifact: VMImage was not found.")
        base = (f"/Subscriptions/{m['sub']}/Providers/Microsoft.Compute/Locations/{loc}/Publishers/{m['pub']}"
                f"/ArtifactTypes/VMImage/Offers/{m['offer']}/Skus/{m['sku']}/Versions")
        return 200, [{"location": loc, "name": v, "id": f"{base}/{v}"} for v in versions]

    def image_version(self, req, m):
        loc = self._loc(m)
        versions = IMAGES.get((m["pub"].lower(), m["offer"].lower(), m["sku"].lower())) or []
        if m["ver"] not in versions:
            raise err(404, "NotFound", "Artifact: VMImage was not found.")
        return 200, {"location": loc, "name": m["ver"], "id": req.path,
                     "properties": {"osImage": {"operatingSystem": "Linux"}, "hyperVGeneration": "V2"}}

    def add_gallery_image(self, rg: str, gallery: str, image: str, version: str = "1.0.0") -> str:
        """Seed a shared image gallery image version (and its group); returns the version's id."""
        with self.lock:
            g = self.groups.setdefault(rg.lower(), {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}", "name": rg,
                "type": "Microsoft.Resources/resourceGroups", "location": "westus",
                "properties": {"provisioningState": "Succeeded"}})
            base = f"{g['id']}/providers/Microsoft.Compute/galleries/{gallery}"
            for rid, typ, name in ((base, "galleries", gallery), (f"{base}/images/{image}", "galleries/images", image),
                                   (f"{base}/images/{image}/versions/{version}", "galleries/images/versions",
                                    version)):
                self.resources[rid.lower()] = {"id": rid, "name": name, "type": f"Microsoft.Compute/{typ}",
                                               "location": "westus", "properties": {"provisioningState": "Succeeded"}}
            return f"{base}/images/{image}/versions/{version}"

    def gallery_get(self, req, m):
        self._group(m["sub"], m["rg"])
        res = self.get(req.path)
        if res is None:
            raise err(404, "ResourceNotFound", f"The Resource '{req.path}' was not found.")
        return 200, res

    routes = [
        ("GET", r"/msi/token", msi_token),
        ("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", openid),
        ("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", client_token),
        ("GET", r"/operations/(?P<op>[0-9a-f]+)", op_status),
        ("GET", r"/operations/(?P<op>[0-9a-f]+)/result", op_result),
        ("GET", P + r"/providers/Microsoft\.Compute/virtualMachines", vm_list_all),
        ("GET", LOC + r"/vmSizes", sizes),
        ("GET", LOC + r"/usages", usages),
        ("GET", IMG, image_versions),
        ("GET", IMG + r"/(?P<ver>[^/]+)", image_version),
        ("PUT", RG, rg_put),
        ("GET", RG, rg_get),
        ("DELETE", RG, rg_delete),
        ("GET", RG + r"/resources", rg_resources),
        ("GET", RG + r"/providers/Microsoft\.Compute/galleries/[^/]+(/images/[^/]+(/versions/[^/]+)?)?", gallery_get),
        ("PUT", RES + r"/subnets/(?P<cname>[^/]+)", subnet_put),
        ("GET", RES + r"/subnets/(?P<cname>[^/]+)", subnet_get),
        ("DELETE", RES + r"/subnets/(?P<cname>[^/]+)", subnet_delete),
        ("GET", RES + r"/instanceView", vm_instance_view),
        ("POST", RES + r"/(?P<action>start|powerOff|restart|deallocate)", vm_action),
        ("GET", RG + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)/(?P<type>[A-Za-z]+)", res_list),
        ("PUT", RES, res_put),
        ("GET", RES, res_get),
        ("DELETE", RES, res_delete),
    ]
