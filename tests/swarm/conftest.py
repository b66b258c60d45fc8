from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from fakes import fake_driver  # noqa: F401

from machine.driver import register_driver


def _flaky_module():
    """tests/swarm/swarm_flaky.py, imported once under its own name (the subprocess tests find it
    through an entry point instead)."""
    if "swarm_flaky" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "swarm_flaky", os.path.join(os.path.dirname(os.path.abspath(__file__)), "swarm_flaky.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["swarm_flaky"] = module
        spec.loader.exec_module(module)
    return sys.modules["swarm_flaky"]


@pytest.fixture
def flaky(fake_driver):  # noqa: F811
    """The fake cloud (tests/fakes.py) as driver "flaky": creates fail for names in $MACHINE_TEST_FAIL."""
    register_driver("flaky", _flaky_module().FlakyDriver)
    try:
        yield fake_driver
    finally:
        register_driver("flaky", None)
