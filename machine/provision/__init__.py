"""Provisioning: OS detection, per-family engine install, TLS configuration, start, verify.

    from machine.provision import provision_host
    result = provision_host(store, host, driver, on_step=print, pin_host_key=True)

Imports paramiko and cryptography only when provision_host runs.
"""
from __future__ import annotations

from .core import STEPS, ProvisionResult, engine_url, engine_version_over_tls, gather_facts, provision_host

__all__ = ["STEPS", "ProvisionResult", "engine_url", "engine_version_over_tls", "gather_facts", "provision_host"]
