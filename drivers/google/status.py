"""An instance's status in one REST call, without google-cloud-compute (~2.4 s to import).

`machine ls` and `status` ask for the state of every machine; this path loads only
google-auth (application default credentials) and requests.
"""
from __future__ import annotations

from ...errors import NotFound
from .errors import AuthFailed, CRED_HINT, GoogleError, translate

DEFAULT_ENDPOINT = "https://compute.googleapis.com"
TIMEOUT = 30


def _session(config):
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    from .client import SCOPES

    with translate("find application default credentials"):
        creds, project = google.auth.default(scopes=SCOPES)
    return AuthorizedSession(creds), config.project or project


def _get(config, path: str, what: str, not_found_hint: str, not_found: str = "") -> dict:
    session, project = _session(config)
    base = (config.endpoint or DEFAULT_ENDPOINT).rstrip("/")
    with translate(what):
        r = session.get(f"{base}/compute/v1/projects/{project}/{path}", timeout=TIMEOUT)
    if r.status_code == 200:
        return r.json()
    try:
        err = (r.json() or {}).get("error") or {}
    except ValueError:
        err = {}
    msg = str(err.get("message") or r.reason or "").splitlines()[0] if (err.get("message") or r.reason) else ""
    reason = ((err.get("errors") or [{}])[0]).get("reason", "")
    if r.status_code == 401:
        raise AuthFailed(f"Google did not accept the credentials ({what}): {msg}", CRED_HINT, reason, 401)
    if r.status_code == 404:
        raise NotFound(not_found or f"cannot {what}: {msg}", not_found_hint)
    raise GoogleError(f"cannot {what}: {msg}", None, reason, r.status_code)


def instance_status(config, name: str) -> str:
    return _get(config, f"zones/{config.zone}/instances/{name}", f"read the state of instance {name}",
                f"it was deleted outside Machine; remove the record: machine rm -f {name}",
                f"instance {name} does not exist in {config.project}/{config.zone}").get("status", "")


def project_statuses(config) -> dict[tuple[str, str], str]:
    """Every instance of the project in one aggregated call (for `ls`): (zone, name) -> status."""
    data = _get(config, "aggregated/instances", "list the instances of the project", "check --google-project")
    out = {}
    for scope, items in (data.get("items") or {}).items():
        zone = scope.rsplit("/", 1)[-1]
        for inst in items.get("instances") or []:
            out[(zone, inst["name"])] = inst.get("status", "")
    return out
