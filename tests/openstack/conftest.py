"""Fixtures shared by the OpenStack tiers (test_openstack_real.py, test_openstack_e2e.py).

`stack` starts the real minimal OpenStack (stack.py) once per session and stops exactly the
processes it started; with MACHINE_OS_STACK_REUSE=1 a stack already running in
MACHINE_OS_STACK_STATE is used and left running. Its start-up cost is printed even with
output capture on, so CI shows it.
"""
from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import DEFAULT_STATE, Stack  # noqa: E402

NEEDED = ("keystone-manage", "mariadbd", "placement-api", "/usr/lib/rabbitmq/bin/rabbitmq-server", "epmd")


@pytest.fixture(scope="session")
def stack(pytestconfig):
    missing = [n for n in NEEDED if not shutil.which(n)]
    if missing:
        pytest.skip(f"OpenStack packages not installed ({', '.join(missing)}): see .ci/openstack-packages.txt")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(line):   # shown even with output capture on: CI prints the stack's cost
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print(f"openstack stack: {line}", file=sys.stderr, flush=True)
        else:
            print(f"openstack stack: {line}", file=sys.stderr, flush=True)
    st = Stack(os.environ.get("MACHINE_OS_STACK_STATE", DEFAULT_STATE), log=say)
    reuse = os.environ.get("MACHINE_OS_STACK_REUSE") == "1" and st.status() and all(a for *_, a in st.status())
    if reuse:
        say(f"reusing the running stack in {st.state}")
    else:
        st.up()
    _seed_error_fixtures(st)
    yield st
    if not reuse:
        st.down()


def _seed_error_fixtures(st: Stack) -> None:
    adm = st.connect("stack-admin")
    # Images that exist but Nova refuses for m1.tiny (512 MiB, 1 GiB disk): real 400s at server create.
    for name, kw in (("big-disk-img", {"min_disk": 5}), ("big-ram-img", {"min_ram": 4096})):
        if adm.image.find_image(name, ignore_missing=True) is None:
            adm.image.create_image(name=name, data=io.BytesIO(b"\0" * 1024), disk_format="raw",
                                   container_format="bare", visibility="public", **kw)


@pytest.fixture
def demo(stack):
    return stack.connect("stack-demo")


@pytest.fixture
def admin(stack):
    return stack.connect("stack-admin")
