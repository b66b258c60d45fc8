"""Opt-in: the google driver against real Compute Engine (never run here: these machines have no internet).

Skipped unless MACHINE_CLOUD_TESTS=1 and GOOGLE_PROJECT are set; credentials come from
application default credentials (`gcloud auth application-default login` or
GOOGLE_APPLICATION_CREDENTIALS). It creates one e2-micro instance and removes it:

    MACHINE_CLOUD_TESTS=1 GOOGLE_PROJECT=… python3 -m pytest -m cloud tests/drivers/test_google_cloud.py
"""
from __future__ import annotations

import os
import uuid

import pytest

pytestmark = [pytest.mark.cloud,
              pytest.mark.skipif(os.environ.get("MACHINE_CLOUD_TESTS") != "1" or not os.environ.get("GOOGLE_PROJECT"),
                                 reason="real-cloud test: set MACHINE_CLOUD_TESTS=1 and GOOGLE_PROJECT")]


def test_real_google_create_state_remove(tmp_path):
    from machine.driver import DriverContext
    from machine.drivers.google import GoogleConfig, GoogleDriver
    from machine.model import State

    name = f"mt-{uuid.uuid4().hex[:8]}"
    cfg = GoogleConfig.from_options({"zone": os.environ.get("GOOGLE_ZONE", "europe-west1-b"),
                                     "machine-type": "e2-micro"}, driver_name="google", machine_name=name)
    (tmp_path / name).mkdir()
    d = GoogleDriver(cfg, DriverContext.scratch(name, tmp_path / name, root=tmp_path))
    try:
        d.pre_create_check()
        d.create()
        assert d.state() == State.RUNNING and d.config.ip_address
    finally:
        d.remove()
    assert len(d.journal) == 0
