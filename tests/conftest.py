"""Shared test set-up: every test gets its own machine store and docker config dir,
so nothing touches the user's ~/.docker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The VM and OpenStack harnesses are importable as `harness` and `openstack_harness`
# from any test module (pytest runs in importlib mode, so tests/ is added here).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Every qemu guest a test boots is isolated (reaches loopback forwards only) unless the test
# says otherwise: a safety net under the explicit --qemu-network-mode isolated of each test.
os.environ.setdefault("QEMU_NETWORK_MODE", "isolated")
# A non-interactive shell starts background jobs with SIGINT ignored (run-tests.sh runs the fast
# tiers with `&`), and an ignored signal stays ignored across exec: every `machine` the tests
# start would then shrug off the Ctrl-C the interrupt tests send. A Python handler here is reset
# to the default in each child at exec, so the children see Ctrl-C as a user's terminal sends it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from harness.checkout import checkout_mismatches  # noqa: E402


def pytest_configure(config):
    # Another checkout installed in editable mode would silently serve machine.drivers.*:
    # stop before any test runs against the wrong code.
    bad = checkout_mismatches()
    if bad:
        raise pytest.UsageError("the tests would run against another tree: " + "; ".join(bad)
                                + f". Run: python3 -m pip install -e {REPO}")


def pytest_collection_modifyitems(config, items):
    # The tests that talk to the one shared VM run first, together; from then on it is parked
    # (stopped) and the VM tests that boot their own machines have both cores.
    items.sort(key=lambda item: 0 if "shared_vm" in getattr(item, "fixturenames", ()) else 1)


def pytest_runtest_setup(item):
    if item.get_closest_marker("vm") and "shared_vm" not in getattr(item, "fixturenames", ()):
        vm = sys.modules.get("harness.vm")
        if vm is not None:
            vm.VMPool.park_standby_everywhere()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    store = tmp_path / "store"
    docker_cfg = tmp_path / "docker"
    monkeypatch.setenv("MACHINE_STORAGE_PATH", str(store))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_cfg))
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "MACHINE_DRIVER",
                "MACHINE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return store


@pytest.fixture
def store_path(isolated_env):
    return isolated_env


class CLIResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CLIResult(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process (fast); returns exit code, stdout, stderr."""
    from machine.cli.main import main

    def run(*args, input=None, monkeypatch_stdin=None):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CLIResult(code, out, err)

    return run


@pytest.fixture
def machine_bin():
    """Run the real `machine` program in a subprocess (what users run)."""

    def run(*args, env=None, input=None, check=False, timeout=120):
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True,
                           env=full_env, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"machine {' '.join(args)} failed: {p.stderr}")
        return CLIResult(p.returncode, p.stdout, p.stderr)

    return run
