"""Adding a driver is one package with one entry point: no core file touched.

A throw-away driver package is installed into a temporary site folder put on PYTHONPATH
(the package plus its .dist-info with the entry point, as any installer writes them, so
Python's own importlib.metadata finds it) and a machine is created, listed and removed
with it through the real `machine` program.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DRIVER = '''
"""A driver that lives outside the machine distribution."""
from dataclasses import dataclass

from machine.driver import Capabilities, Driver, DriverConfig, setting
from machine.model import State


@dataclass
class DemoConfig(DriverConfig):
    colour: str = setting("Colour", "blue", flag="colour", choices=("blue", "green"), help="paint")
    url: str = setting("URL", "", flag="url", help="engine URL")


class DemoDriver(Driver):
    name = "demo"
    description = "a demonstration driver from a separate package"
    Config = DemoConfig
    capabilities = Capabilities(start=False, stop=False, restart=False, kill=False, ssh=False,
                                provision=False, local_state=True)

    def pre_create_check(self):
        pass

    def create(self):
        self.journal.record("paint", self.config.colour)
        self.config.ip_address = "127.0.0.1"

    def remove(self):
        for entry in list(self.journal):
            self.journal.forget(entry["kind"], entry["id"])

    def state(self):
        return State.RUNNING

    def engine_url(self, engine_port):
        return self.config.url
'''

METADATA = "Metadata-Version: 2.1\nName: machine-driver-demo\nVersion: 0.1\n"
ENTRY_POINTS = "[machine.drivers]\ndemo = machine_driver_demo:DemoDriver\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin-site")
    (root / "machine_driver_demo").mkdir()
    (root / "machine_driver_demo" / "__init__.py").write_text(textwrap.dedent(DRIVER))
    info = root / "machine_driver_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(METADATA)
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "top_level.txt").write_text("machine_driver_demo\n")
    return root


def run(site: Path, *args, store: Path):
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store / "docker"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_a_separately_installed_driver_creates_machines(site, tmp_path):
    store = tmp_path / "store"
    r = run(site, "create", "-d", "demo", "--help", store=store)
    assert r.returncode == 0, r.stderr
    assert "a demonstration driver from a separate package" in r.stdout and "--demo-colour" in r.stdout
    r = run(site, "create", "-d", "demo", "--demo-colour", "red", "d1", store=store)
    assert r.returncode != 0 and "invalid --demo-colour 'red'" in r.stderr and "Traceback" not in r.stderr
    assert not (store / "machines" / "d1").exists()
    r = run(site, "create", "-d", "demo", "--demo-colour", "green", "--demo-url", "tcp://127.0.0.1:2376", "d1",
            store=store)
    assert r.returncode == 0, r.stderr
    record = json.loads((store / "machines" / "d1" / "config.json").read_text())
    assert record["DriverName"] == "demo" and record["Driver"]["Colour"] == "green"
    own = json.loads((store / "machines" / "d1" / "machine.json").read_text())
    assert own["Machine"]["Journal"] == [{"kind": "paint", "id": "green"}]
    r = run(site, "ls", "--format", "{{.Name}} {{.DriverName}} {{.URL}}", store=store)
    assert r.stdout.split("\n")[0] == "d1 demo tcp://127.0.0.1:2376"
    assert run(site, "rm", "-y", "d1", store=store).returncode == 0
    assert not (store / "machines" / "d1").exists()


def test_the_checkout_does_not_know_the_demo_driver(tmp_path):
    # nothing was added to the core: without the package the driver does not exist
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(tmp_path / "s"))
    r = subprocess.run([sys.executable, "-m", "machine", "create", "-d", "demo", "x"], capture_output=True,
                       text=True, env=env)
    assert r.returncode != 0 and "unknown driver 'demo'" in r.stderr
