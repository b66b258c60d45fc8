"""Provisioning: facts from the host, a pure plan of what is missing (plan.py), an executor (core.py).

    from machine.provision import provision_host
    result = provision_host(store, host, driver, on_step=print, pin_host_key=True)

Imports paramiko and cryptography only when provision_host runs.
"""
from __future__ import annotations

from .core import ProvisionResult, gather_facts, provision_host
from .plan import Plan, Wanted, make_plan

__all__ = ["Plan", "ProvisionResult", "Wanted", "gather_facts", "make_plan", "provision_host"]
