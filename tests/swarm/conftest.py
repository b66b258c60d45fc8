from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # swarm_flaky

from fakes import fake_driver  # noqa: E402,F401

from machine.driver import register_driver  # noqa: E402


@pytest.fixture
def flaky(fake_driver, monkeypatch):  # noqa: F811
    """The fake cloud (tests/fakes.py) as driver "flaky": creates fail for names in $MACHINE_TEST_FAIL."""
    from swarm_flaky import FlakyDriver

    register_driver("flaky", FlakyDriver)
    try:
        yield fake_driver
    finally:
        register_driver("flaky", None)
