"""Deploying a VM template from a content library (vSphere's vAPI REST: /rest/...).

A library item of type vm-template (VMTX) is deployed with
`POST /rest/vcenter/vm-template/library-items/{item}?action=deploy`, placed like a clone (pool,
host, folder, datastore); the driver then reconfigures and powers it on as it does a clone.
"""
from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ...errors import MachineError, UsageError


class Rest:
    def __init__(self, config, ctx: ssl.SSLContext):
        from .session import _endpoint, credentials

        host, port = _endpoint(config)
        self.base = f"https://{host}:{port}/rest"
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                                  urllib.request.ProxyHandler({}))
        self.timeout = float(config.api_timeout or 60)
        user, password = credentials(config)
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.token = ""
        self.token = self.call("POST", "/com/vmware/cis/session", headers={"Authorization": f"Basic {basic}"},
                               what="logging in to the vSphere REST API")

    def call(self, method: str, path: str, body: dict | None = None, *, what: str, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        h = {"Accept": "application/json"}
        if data is not None:
            h["Content-Type"] = "application/json"
        if self.token:
            h["vmware-api-session-id"] = self.token
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = _vapi_error(e.read())
            if e.code == 401:
                raise MachineError(f"{what}: vCenter refused the login (HTTP 401)",
                                   "check the user name and password") from None
            raise MachineError(f"{what}: HTTP {e.code}{': ' + detail if detail else ''}") from None
        except OSError as e:
            raise MachineError(f"{what}: {getattr(e, 'reason', None) or e}") from None
        if not raw:
            return None
        return json.loads(raw).get("value")

    def logout(self) -> None:
        try:
            self.call("DELETE", "/com/vmware/cis/session", what="logging out")
        except MachineError:
            pass


def _vapi_error(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:200]
    value = doc.get("value") if isinstance(doc, dict) else None
    msgs = [m.get("default_message", "") for m in (value or {}).get("messages", [])] if isinstance(value, dict) else []
    kind = (doc.get("type") or "").rsplit(".", 1)[-1] if isinstance(doc, dict) else ""
    text = "; ".join(m for m in msgs if m) or (value if isinstance(value, str) else "")
    return f"{text} ({kind})" if text and kind else (text or kind)


def find_item(rest: Rest, library: str, item: str) -> str:
    libs = rest.call("POST", "/com/vmware/content/library?~action=find", {"spec": {"name": library}},
                     what=f"finding content library {library!r}") or []
    if not libs:
        raise UsageError(f"--vsphere-content-library {library!r}: no such content library")
    items = rest.call("POST", "/com/vmware/content/library/item?~action=find",
                      {"spec": {"library_id": libs[0], "name": item}}, what=f"finding {item!r} in {library!r}") or []
    if not items:
        raise UsageError(f"--vsphere-clone-from {item!r}: no such item in content library {library!r}")
    return items[0]


def deploy(rest: Rest, item_id: str, name: str, pl) -> str:
    """Deploy the VMTX item; returns the new VM's moref value."""
    placement = {"folder": pl.folder._moId, "resource_pool": pl.pool._moId}
    if pl.host is not None:
        placement["host"] = pl.host._moId
    spec = {"name": name, "placement": placement, "disk_storage": {"datastore": pl.datastore._moId},
            "powered_on": False}
    vm = rest.call("POST", f"/vcenter/vm-template/library-items/{urllib.parse.quote(item_id)}?action=deploy",
                   {"spec": spec}, what=f"deploying library item {item_id}")
    if not vm:
        raise MachineError(f"deploying library item {item_id}: vCenter returned no VM")
    return vm
