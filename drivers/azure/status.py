"""A VM's power state in one REST call, without azure-mgmt-compute (~430 ms to import).

`machine ls` and `status` ask for the state of every machine; this path loads only the
credential (azure-identity) and requests, and asks ARM for the VM's instance view.
"""
from __future__ import annotations

from ...errors import NotFound
from .errors import AuthFailed, AzureError, CRED_HINT, QuotaExceeded, translate  # noqa: F401

API_VERSION = "2024-07-01"
TIMEOUT = 30


def _session(config):
    import requests

    from .client import credential

    with translate("get an Azure token"):
        token = credential(config).get_token(config.arm_endpoint() + "/.default").token
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    if config.ca_bundle:
        s.verify = config.ca_bundle
    return s


def _raise_for(r, what: str, not_found_hint: str, not_found: str = ""):
    try:
        err = (r.json() or {}).get("error") or {}
    except ValueError:
        err = {}
    code, msg = err.get("code", ""), (err.get("message") or r.reason or "").splitlines()[0] if (
        err.get("message") or r.reason) else ""
    text = f"cannot {what}: {code + ': ' if code else ''}{msg}"
    if r.status_code == 401:
        raise AuthFailed(f"Azure did not accept the credentials ({what}): {msg}", CRED_HINT, code, 401)
    if r.status_code == 404:
        raise NotFound(f"{not_found} ({code})" if not_found else text, not_found_hint)
    raise AzureError(text, None, code, r.status_code)


def instance_view_statuses(config, name: str) -> list[dict]:
    url = (f"{config.arm_endpoint()}/subscriptions/{config.subscription_id}/resourceGroups/"
           f"{config.resource_group}/providers/Microsoft.Compute/virtualMachines/{name}/instanceView")
    what = f"read the state of VM {name}"
    s = _session(config)
    with translate(what):
        r = s.get(url, params={"api-version": API_VERSION}, timeout=TIMEOUT)
    if r.status_code != 200:
        _raise_for(r, what, f"it was deleted outside Machine; remove the record: machine rm -f {name}",
                   f"VM {name} does not exist in resource group {config.resource_group}")
    return r.json().get("statuses") or []


def list_statuses(config) -> dict[str, list[dict]]:
    """Every VM of the subscription with its statuses (one call, for `ls`): lower-case ARM id -> statuses."""
    url = f"{config.arm_endpoint()}/subscriptions/{config.subscription_id}/providers/Microsoft.Compute/virtualMachines"
    what = "list the VMs of the subscription"
    s = _session(config)
    out: dict[str, list[dict]] = {}
    params = {"api-version": API_VERSION, "statusOnly": "true"}
    while url:
        with translate(what):
            r = s.get(url, params=params, timeout=TIMEOUT)
        if r.status_code != 200:
            _raise_for(r, what, "check --azure-subscription-id")
        data = r.json()
        for vm in data.get("value") or []:
            out[vm["id"].lower()] = ((vm.get("properties") or {}).get("instanceView") or {}).get("statuses") or []
        url, params = data.get("nextLink"), None
    return out
