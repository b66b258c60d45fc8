"""pytest fixtures that start the emulators and point the SDKs (and the `machine` CLI) at them.

    from emulators.fixtures import azure_emu, azure_env, google_emu, google_env  # noqa: F401

Only loopback is ever contacted: the env fixtures also aim the SDKs' metadata-server
probes (Azure IMDS, GCE metadata) at a closed loopback port, and drop any CA bundle the
machine presets in favour of the emulator's test CA.
"""
from __future__ import annotations

import os

import pytest

CA_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
CLOSED = "127.0.0.1:9"
AZURE_CRED_VARS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
                   "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_PASSWORD", "IDENTITY_ENDPOINT",
                   "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_AUTHORITY_HOST",
                   "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_LOCATION")


@pytest.fixture
def azure_emu(tmp_path_factory):
    from .azure import AzureEmulator

    emu = AzureEmulator(tmp_path_factory.mktemp("azure-tls")).start()
    try:
        yield emu
    finally:
        emu.stop()


def azure_environ(emu, base: dict | None = None) -> dict:
    """The environment under which azure-identity's default chain gets its token from the emulator."""
    env = dict(os.environ if base is None else base)
    for var in AZURE_CRED_VARS + CA_VARS:
        env.pop(var, None)
    env.update(emu.identity_env())
    env["REQUESTS_CA_BUNDLE"] = emu.ca_pem
    # IMDS (169.254.169.254) is never probed: the managed identity endpoint is set, and its override points here.
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = f"http://{CLOSED}"
    env["AZURE_CORE_COLLECT_TELEMETRY"] = "false"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@pytest.fixture
def azure_env(azure_emu, monkeypatch):
    env = azure_environ(azure_emu)
    for k in list(os.environ):
        if k not in env:
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def azure_options(emu, **extra) -> dict:
    from .azure import SUBSCRIPTION

    opts = {"subscription-id": SUBSCRIPTION, "endpoint": emu.url, "ca-bundle": emu.ca_pem, "location": "westus",
            "resource-group": "machines", "image": "debian:debian-12:12:latest", "size": "Standard_B2s",
            "timeout": 30}
    opts.update(extra)
    return opts


def azure_flags(emu, **extra) -> list[str]:
    out = []
    for k, v in azure_options(emu, **extra).items():
        if v is True:
            out.append(f"--azure-{k}")
        elif v not in (False, None):
            out += [f"--azure-{k}", str(v)]
    return out


GOOGLE_VARS = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CONFIG",
               "CLOUDSDK_CORE_PROJECT", "GOOGLE_PROJECT", "GOOGLE_ZONE", "GOOGLE_API_USE_CLIENT_CERTIFICATE",
               "GOOGLE_CLOUD_UNIVERSE_DOMAIN")


@pytest.fixture
def google_emu():
    from .google import GoogleEmulator

    emu = GoogleEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


def google_environ(emu, key_file: str | None, base: dict | None = None, config_dir: str | None = None) -> dict:
    """The environment under which google-auth's ADC finds the emulator's service-account key (or nothing)."""
    env = dict(os.environ if base is None else base)
    for var in GOOGLE_VARS + CA_VARS:
        env.pop(var, None)
    if key_file:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = key_file
    # no gcloud user credentials, and the GCE metadata server is never probed off loopback
    if config_dir:
        env["CLOUDSDK_CONFIG"] = config_dir
    env["GCE_METADATA_HOST"] = env["GCE_METADATA_IP"] = CLOSED
    env["NO_GCE_CHECK"] = "True"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@pytest.fixture
def google_key(google_emu, tmp_path):
    return google_emu.service_account(tmp_path)


@pytest.fixture
def google_env(google_emu, google_key, monkeypatch, tmp_path):
    env = google_environ(google_emu, google_key, config_dir=str(tmp_path / "gcloud"))
    for k in list(os.environ):
        if k not in env:
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def google_options(emu, **extra) -> dict:
    from .google import PROJECT

    opts = {"project": PROJECT, "zone": "us-central1-a", "endpoint": emu.url, "machine-type": "e2-medium",
            "timeout": 30}
    opts.update(extra)
    return opts


def google_flags(emu, **extra) -> list[str]:
    out = []
    for k, v in google_options(emu, **extra).items():
        if v is True:
            out.append(f"--google-{k}")
        elif v not in (False, None):
            out += [f"--google-{k}", str(v)]
    return out
