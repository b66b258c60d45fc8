"""Build an openstacksdk Connection from the machine's config (imported only inside methods).

Three sources, the user's choice kept in config.json by reference:
  * `--openstack-cloud NAME` / OS_CLOUD: openstacksdk's own clouds.yaml loading (application
    credentials, secure.yaml, …) as it is; region, endpoint type, TLS options and a password
    typed as a flag override it;
  * flags (docker-machine's names), defaulting to the OS_* variables;
  * secrets: a password typed as a flag comes from driver.secrets (the API layer's keyring or
    0600 file); otherwise OS_PASSWORD / OS_APPLICATION_CREDENTIAL_SECRET are read *now*, at use.
"""
from __future__ import annotations

import os
from typing import Any

from ...errors import UsageError
from .errors import translate
from .options import ENDPOINT_TYPES


def auth_kwargs(config: dict, secrets: dict, environ=os.environ) -> dict[str, Any]:
    """openstack.connect() keyword arguments for the flag/env route (no clouds.yaml)."""
    kw: dict[str, Any] = {}

    def put(name, value):
        if value not in (None, ""):
            kw[name] = value

    put("auth_url", config.get("AuthUrl"))
    app_id = config.get("ApplicationCredentialId")
    app_name = config.get("ApplicationCredentialName")
    if app_id or app_name:
        kw["auth_type"] = "v3applicationcredential"
        put("application_credential_id", app_id)
        put("application_credential_name", app_name)
        put("application_credential_secret", secrets.get("ApplicationCredentialSecret")
            or environ.get("OS_APPLICATION_CREDENTIAL_SECRET"))
        put("username", config.get("Username"))
        put("user_id", config.get("UserId"))
        put("user_domain_name", config.get("UserDomainName") or config.get("DomainName"))
        put("user_domain_id", config.get("UserDomainId") or config.get("DomainId"))
    else:
        kw["auth_type"] = "password"
        put("username", config.get("Username"))
        put("user_id", config.get("UserId"))
        put("password", secrets.get("Password") or environ.get("OS_PASSWORD"))
        put("project_name", config.get("TenantName"))
        put("project_id", config.get("TenantId"))
        # docker-machine's --openstack-domain-* name both the user's and the project's domain.
        put("user_domain_name", config.get("UserDomainName") or config.get("DomainName"))
        put("user_domain_id", config.get("UserDomainId") or config.get("DomainId"))
        put("project_domain_name", config.get("TenantDomainName") or config.get("DomainName"))
        put("project_domain_id", config.get("TenantDomainId") or config.get("DomainId"))
        if not any(k in kw for k in ("user_domain_name", "user_domain_id")) and "username" in kw:
            kw["user_domain_id"] = "default"
        if not any(k in kw for k in ("project_domain_name", "project_domain_id")) and "project_name" in kw:
            kw["project_domain_id"] = "default"
    return kw


def common_kwargs(config: dict) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if config.get("Region"):
        kw["region_name"] = config["Region"]
    endpoint_type = config.get("EndpointType")
    if endpoint_type:
        if endpoint_type not in ENDPOINT_TYPES:
            raise UsageError(f"invalid --openstack-endpoint-type {endpoint_type!r}",
                             "use publicURL, internalURL or adminURL")
        kw["interface"] = ENDPOINT_TYPES[endpoint_type]
    if config.get("Insecure"):
        kw["verify"] = False
    elif config.get("CaCert"):
        kw["cacert"] = config["CaCert"]
    return kw


def connect(config: dict, secrets: dict, environ=os.environ):
    """Return an authenticated-on-first-use openstack.connection.Connection."""
    import openstack

    common = common_kwargs(config)
    with translate("OpenStack configuration"):
        if config.get("Cloud"):
            # The cloud's own auth (clouds.yaml, secure.yaml, OS_CLIENT_CONFIG_FILE) is used as
            # it is; a password typed as a flag (kept in the credential store) overrides it.
            overrides = {}
            if secrets.get("Password"):
                overrides["password"] = secrets["Password"]
            if secrets.get("ApplicationCredentialSecret"):
                overrides["application_credential_secret"] = secrets["ApplicationCredentialSecret"]
            return openstack.connect(cloud=config["Cloud"], **common, **overrides)
        kw = auth_kwargs(config, secrets, environ)
        if not kw.get("auth_url"):
            raise UsageError("OpenStack authentication URL is required",
                             "pass --openstack-auth-url, set OS_AUTH_URL, or name a cloud with --openstack-cloud")
        return openstack.connect(load_yaml_config=False, load_envvars=False, **common, **kw)
