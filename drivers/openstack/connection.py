"""Build an openstacksdk Connection from the machine's config (imported only inside methods).

Three sources, the user's choice kept in config.json by reference:
  * `--openstack-cloud NAME` / OS_CLOUD: openstacksdk's own clouds.yaml loading (application
    credentials, secure.yaml, …) as it is; region, endpoint type, TLS options and a password
    typed as a flag override it;
  * flags (docker-machine's names), defaulting to the OS_* variables;
  * secrets: a password typed as a flag comes from the config's secret settings (the core's keyring or
    0600 file); otherwise OS_PASSWORD / OS_APPLICATION_CREDENTIAL_SECRET are read *now*, at use.
"""
from __future__ import annotations

import os
from typing import Any

from ...errors import UsageError
from .errors import translate
from .options import ENDPOINT_TYPES


def auth_kwargs(config, environ=os.environ) -> dict[str, Any]:
    """openstack.connect() keyword arguments for the flag/env route (no clouds.yaml)."""
    kw: dict[str, Any] = {}

    def put(name, value):
        if value not in (None, ""):
            kw[name] = value

    put("auth_url", config.auth_url)
    app_id = config.application_credential_id
    app_name = config.application_credential_name
    if app_id or app_name:
        kw["auth_type"] = "v3applicationcredential"
        put("application_credential_id", app_id)
        put("application_credential_name", app_name)
        put("application_credential_secret", config.application_credential_secret
            or environ.get("OS_APPLICATION_CREDENTIAL_SECRET"))
        put("username", config.username)
        put("user_id", config.user_id)
        put("user_domain_name", config.user_domain_name or config.domain_name)
        put("user_domain_id", config.user_domain_id or config.domain_id)
    else:
        kw["auth_type"] = "password"
        put("username", config.username)
        put("user_id", config.user_id)
        put("password", config.password or environ.get("OS_PASSWORD"))
        put("project_name", config.tenant_name)
        put("project_id", config.tenant_id)
        # docker-machine's --openstack-domain-* name both the user's and the project's domain.
        put("user_domain_name", config.user_domain_name or config.domain_name)
        put("user_domain_id", config.user_domain_id or config.domain_id)
        put("project_domain_name", config.tenant_domain_name or config.domain_name)
        put("project_domain_id", config.tenant_domain_id or config.domain_id)
        if not any(k in kw for k in ("user_domain_name", "user_domain_id")) and "username" in kw:
            kw["user_domain_id"] = "default"
        if not any(k in kw for k in ("project_domain_name", "project_domain_id")) and "project_name" in kw:
            kw["project_domain_id"] = "default"
    return kw


def common_kwargs(config) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if config.region:
        kw["region_name"] = config.region
    endpoint_type = config.endpoint_type
    if endpoint_type:
        if endpoint_type not in ENDPOINT_TYPES:
            raise UsageError(f"invalid --openstack-endpoint-type {endpoint_type!r}",
                             "use publicURL, internalURL or adminURL")
        kw["interface"] = ENDPOINT_TYPES[endpoint_type]
    if config.insecure:
        kw["verify"] = False
    elif config.cacert:
        kw["cacert"] = config.cacert
    return kw


def connect(config, environ=os.environ):
    """Return an authenticated-on-first-use openstack.connection.Connection."""
    import openstack

    common = common_kwargs(config)
    with translate("OpenStack configuration"):
        if config.cloud:
            # The cloud's own auth (clouds.yaml, secure.yaml, OS_CLIENT_CONFIG_FILE) is used as
            # it is; a password typed as a flag (kept in the credential store) overrides it.
            overrides = {}
            if config.password:
                overrides["password"] = config.password
            if config.application_credential_secret:
                overrides["application_credential_secret"] = config.application_credential_secret
            return openstack.connect(cloud=config.cloud, **common, **overrides)
        kw = auth_kwargs(config, environ)
        if not kw.get("auth_url"):
            raise UsageError("OpenStack authentication URL is required",
                             "pass --openstack-auth-url, set OS_AUTH_URL, or name a cloud with --openstack-cloud")
        return openstack.connect(load_yaml_config=False, load_envvars=False, **common, **kw)
