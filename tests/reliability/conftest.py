"""Reliability tier (marker `reliability`): faults and hostile input, with figures.

Every test here is marked `reliability`. The fast parts run in CI (a few tens of
seconds); set MACHINE_RELIABILITY_LONG=1 for the long sweeps. The tier prints its
counts at the end of the run: kills survived, inputs tried, injections (goal 0).
"""
from __future__ import annotations

import os
from collections import Counter

import pytest

LONG = os.environ.get("MACHINE_RELIABILITY_LONG", "") not in ("", "0")

_COUNTS: Counter = Counter()


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def counts():
    """Session-wide counters printed in the terminal summary."""
    return _COUNTS


@pytest.fixture
def long_sweep():
    return LONG


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _COUNTS:
        return
    c = _COUNTS
    terminalreporter.section("reliability figures")
    terminalreporter.write_line(
        f"kills survived {c['kills_survived']} (of {c['kills']} SIGKILLs, {c['kills_mid_create']} mid-creation), "
        f"inputs tried {c['inputs']}, shell evaluations {c['evaluations']}, "
        f"refused with one line {c['refused']}, injections {c['injections']}, "
        f"wrong values {c['wrong_values']}, tracebacks {c['tracebacks']}, "
        f"unexpected errors {c['unexpected']} (CLI corpus: {c['cli_inputs']} runs, {c['cli_kills']} kills of create/rm)"
        + ("" if LONG else "  [fast tier; MACHINE_RELIABILITY_LONG=1 for the long sweeps]"))
