"""`machine create` with several machines, through the real program in a subprocess.

The flaky driver (tests/swarm/swarm_flaky.py: tests/fakes.py's fake cloud, failing for the names
in $MACHINE_TEST_FAIL) is found the way any driver package is: a .dist-info with a
`machine.drivers` entry point on PYTHONPATH.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.swarm

HERE = Path(__file__).resolve().parent


@pytest.fixture
def flaky_bin(tmp_path, machine_bin):
    site = tmp_path / "site"
    (site / "machine_flaky_driver-0.1.dist-info").mkdir(parents=True)
    (site / "machine_flaky_driver-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: machine-flaky-driver\nVersion: 0.1\n")
    (site / "machine_flaky_driver-0.1.dist-info" / "entry_points.txt").write_text(
        "[machine.drivers]\nflaky = swarm_flaky:FlakyDriver\n")
    shutil.copy(HERE / "swarm_flaky.py", site / "swarm_flaky.py")
    (site / "fakes.py").write_text((HERE.parent / "fakes.py").read_text())
    pythonpath = os.pathsep.join([str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

    def run(*args, fail=""):
        return machine_bin(*args, env={"PYTHONPATH": pythonpath, "MACHINE_TEST_FAIL": fail})

    return run


def test_create_n3_one_fails(flaky_bin, store_path):
    r = flaky_bin("create", "-d", "flaky", "-n", "3", "--name-template", "node-{n}", "--flaky-zone", "b",
                  fail="node-2")
    assert r.code == 1, r
    # the summary names which failed and why
    summary = r.out.splitlines()
    assert summary[0].split() == ["NAME", "RESULT", "STEP", "TIME", "ERROR"]
    rows = {line.split()[0]: line for line in summary[1:4]}
    assert rows["node-1"].split()[1] == "Ready" and rows["node-3"].split()[1] == "Ready"
    assert rows["node-2"].split()[1:3] == ["Failed", "create-host"]
    assert "no capacity left for node-2 in zone b" in rows["node-2"]
    assert summary[-1].startswith("2 of 3 created") and "failed: node-2" in summary[-1]
    assert "Error: node-2: " in r.err and "nothing was left behind" in r.err
    # piped: plain progress lines, one per step
    assert "(node-2) [" in r.err and "rolling back" in r.err
    # the two others are Ready, the failed one rolled back (no record, its journal emptied first)
    assert flaky_bin("ls", "-q").out.split() == ["node-1", "node-3"]
    assert not (store_path / "machines" / "node-2").exists()
    for n in ("node-1", "node-3"):
        own = json.loads((store_path / "machines" / n / "machine.json").read_text())
        assert own["Machine"]["Phase"] == "ready"


def test_create_several_names_all_ok(flaky_bin, store_path):
    r = flaky_bin("create", "-d", "flaky", "--parallel", "2", "a1", "a2", "a3")
    assert r.code == 0, r
    assert r.out.splitlines()[-1].startswith("3 of 3 created")
    assert flaky_bin("ls", "-q").out.split() == ["a1", "a2", "a3"]


def test_legacy_swarm_flags_point_to_swarm_mode(flaky_bin, store_path):
    for args in (["--swarm"], ["--swarm-master"], ["--swarm-discovery", "token://abc"]):
        r = flaky_bin("create", "-d", "flaky", *args, "x")
        assert r.code != 0
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and "swarm mode" in lines[0] and "--swarm-manager" in lines[0], r.err
        assert args[0] in lines[0]
    assert not (store_path / "machines" / "x").exists()


def test_swarm_flag_errors_before_anything_exists(flaky_bin, store_path):
    r = flaky_bin("create", "-d", "flaky", "--swarm-worker", "x")
    assert r.code != 0 and "--swarm-join" in r.err
    r = flaky_bin("create", "-d", "flaky", "--swarm-worker", "--swarm-join", "nosuch", "x")
    assert r.code != 0 and "nosuch" in r.err
    flaky_bin("create", "-d", "flaky", "plain")
    r = flaky_bin("create", "-d", "flaky", "--swarm-worker", "--swarm-join", "plain", "x")
    assert r.code != 0 and "plain is not a swarm manager" in r.err
    r = flaky_bin("create", "-d", "flaky", "--swarm-manager", "--swarm-node-label", "=x", "x")
    assert r.code != 0 and "--swarm-node-label" in r.err
    assert flaky_bin("ls", "-q").out.split() == ["plain"]
