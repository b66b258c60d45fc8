"""Opt-in: the azure driver against real Azure (never run here: these machines have no internet).

Skipped unless MACHINE_CLOUD_TESTS=1 and AZURE_SUBSCRIPTION_ID are set; credentials come from
azure-identity's chain (az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, …).
It creates one small VM in a resource group of its own and removes it, checking that
nothing of ours is left:

    MACHINE_CLOUD_TESTS=1 AZURE_SUBSCRIPTION_ID=… python3 -m pytest -m cloud tests/drivers/test_azure_cloud.py
"""
from __future__ import annotations

import os
import uuid

import pytest

pytestmark = [pytest.mark.cloud,
              pytest.mark.skipif(os.environ.get("MACHINE_CLOUD_TESTS") != "1" or not os.environ.get(
                  "AZURE_SUBSCRIPTION_ID"), reason="real-cloud test: set MACHINE_CLOUD_TESTS=1 and AZURE_SUBSCRIPTION_ID")]


def test_real_azure_create_state_remove(tmp_path):
    from machine.driver import DriverContext
    from machine.drivers.azure import AzureConfig, AzureDriver
    from machine.model import State

    name = f"mt-{uuid.uuid4().hex[:8]}"
    cfg = AzureConfig.from_options({"resource-group": f"machine-test-{name}",
                                    "location": os.environ.get("AZURE_LOCATION", "westeurope"),
                                    "size": os.environ.get("AZURE_SIZE", "Standard_B1s"),
                                    "image": "debian:debian-12:12:latest"}, driver_name="azure", machine_name=name)
    (tmp_path / name).mkdir()
    d = AzureDriver(cfg, DriverContext.scratch(name, tmp_path / name, root=tmp_path))
    try:
        d.pre_create_check()
        d.create()
        assert d.state() == State.RUNNING and d.config.ip_address
        d.stop()
        assert d.state() == State.STOPPED
    finally:
        d.remove()
    assert len(d.journal) == 0
    assert not d.az.resource.resource_groups.check_existence(cfg.resource_group)
