"""Ctrl-C at several points of a real `machine create -d amazonec2` process (moto's server on 127.0.0.1).

The test's moto server holds one AWS call in flight (the request has left, no answer yet); the
test sends SIGINT to the `machine` process, then lets moto finish the call — so the resource
exists although the client never learned its id, the hardest case for a rollback. The process
must roll back (finding that resource by its token tag), print one line and leave nothing in
moto and no record in the store.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from aws.fixtures import aws_env, moto, moto_server  # noqa: F401
from aws.motoserver import UBUNTU_AMI

SPOT = ["--amazonec2-request-spot-instance", "--amazonec2-spot-price", "0.05"]
POINTS = [   # (call held in flight, calls of it let through first, extra flags)
    ("DescribeImages", 0, []),                 # pre-create check: nothing exists yet
    ("ImportKeyPair", 0, []),
    ("CreateSecurityGroup", 0, []),
    ("RunInstances", 1, []),                   # the 1st is the pre-create dry run; the 2nd starts it
    ("DescribeInstances", 0, []),              # waiting for the instance to run
    ("RequestSpotInstances", 0, SPOT),
    ("DescribeSpotInstanceRequests", 0, SPOT),
    ("AllocateAddress", 0, ["--aws-elastic-ip", "new"]),
    ("AssociateAddress", 0, ["--aws-elastic-ip", "new"]),
]


def run_and_interrupt(moto, action: str, extra: list[str], store: str, skip: int = 0):
    env = dict(os.environ, MACHINE_STORAGE_PATH=store)
    argv = [sys.executable, "-m", "machine", "create", "-d", "amazonec2", "--amazonec2-endpoint", moto.url,
            "--amazonec2-ami", UBUNTU_AMI, *extra, "sig1"]
    with moto.hold(action, skip) as gate:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert gate.reached.wait(90), f"{action} was never called"
            p.send_signal(signal.SIGINT)
        finally:
            gate.release()
        out, err = p.communicate(timeout=120)
    return p.returncode, out, err


@pytest.mark.parametrize("action,skip,extra", POINTS, ids=[f"{a}#{k}" for a, k, _ in POINTS])
def test_sigint_leaves_nothing(action, skip, extra, moto, store_path):
    rc, out, err = run_and_interrupt(moto, action, extra, str(store_path), skip)
    assert rc != 0, err
    # during the pre-create check the core prints click's "Aborted."; later "create interrupted during …"
    lines = [l for l in err.splitlines() if "interrupted" in l.lower() or l.startswith("Aborted")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert moto.leftovers() == {}, (action, err)
    assert not (store_path / "machines" / "sig1").exists(), err
    if action in ("RunInstances", "RequestSpotInstances", "DescribeInstances"):
        # the held call did make an instance (the client never saw its id): the rollback found it
        states = [i["State"]["Name"] for r in moto.ec2().describe_instances()["Reservations"] for i in r["Instances"]]
        assert states and set(states) == {"terminated"}, states
