"""Test doubles the core's unit tests share, used through public interfaces only.

    FakeDriver    an in-memory "cloud": create records resources in the journal,
                  can fail at a chosen point, remove deletes what the journal holds.
    fake_driver   fixture: registers FakeDriver as driver "fake" (machine.driver.register_driver)
                  and gives the test the shared CLOUD to inspect.

The real tiers (sshd, VMs, moto, OpenStack, vcsim, the emulators) stay real; these
fakes only stand where the core's own logic is under test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from machine.driver import Capabilities, Driver, DriverConfig, register_driver, setting
from machine.errors import MachineError
from machine.model import State


@dataclass
class FakeCloud:
    resources: dict = field(default_factory=dict)       # id -> kind
    removed: list = field(default_factory=list)
    journal_on_disk: list = field(default_factory=list)  # what config.json held mid-create
    fail_at: str = ""                                    # "", "pre-check", "after-first", "after-all"
    power: dict = field(default_factory=dict)            # machine -> State


CLOUD = FakeCloud()


@dataclass
class FakeConfig(DriverConfig):
    size: int = setting("Size", 1, flag="size", env="FAKE_SIZE", min=1, max=8, help="how big", group="Size")
    zone: str = setting("Zone", "a", flag="zone", choices=("a", "b"), alias="--fakecloud-zone", help="where")
    token: str = setting("Token", "", flag="token", secret=True, help="a typed secret")
    tags: list = setting("Tags", [], flag="tag", help="tags (repeatable)")
    labels: dict = setting("Labels", {}, flag="label", help="KEY=VALUE (repeatable)")
    instance_id: str = setting("InstanceId", "")


class FakeDriver(Driver):
    name = "fake"
    description = "an in-memory cloud for the core's unit tests"
    Config = FakeConfig
    capabilities = Capabilities(provision=False, local_state=True, cloud=True)
    config: FakeConfig

    def pre_create_check(self) -> None:
        if CLOUD.fail_at == "pre-check":
            raise MachineError("fake quota exceeded", "ask for more")

    def create(self) -> None:
        first = f"disk-{self.machine_name}"
        CLOUD.resources[first] = "disk"
        self.journal.record("disk", first)
        # persisted already: read config.json as another process would
        path = self.machine_dir / "machine.json"
        CLOUD.journal_on_disk.append(json.loads(path.read_text())["Machine"]["Journal"])
        if CLOUD.fail_at == "after-first":
            raise RuntimeError("capacity exhausted")
        vm = f"vm-{self.machine_name}"
        CLOUD.resources[vm] = "vm"
        self.journal.record("vm", vm)
        self.config.instance_id = vm
        self.config.ip_address = "127.0.0.1"
        CLOUD.power[self.machine_name] = State.RUNNING
        if CLOUD.fail_at == "after-all":
            raise KeyboardInterrupt

    def remove(self) -> None:
        for entry in reversed(list(self.journal)):
            if CLOUD.resources.pop(entry["id"], None) is not None:
                CLOUD.removed.append(entry["id"])
            self.journal.forget(entry["kind"], entry["id"])
        CLOUD.power.pop(self.machine_name, None)

    def state(self) -> State:
        return CLOUD.power.get(self.machine_name, State.NONE)

    def start(self) -> None:
        CLOUD.power[self.machine_name] = State.RUNNING

    def stop(self) -> None:
        CLOUD.power[self.machine_name] = State.STOPPED

    def kill(self) -> None:
        CLOUD.power[self.machine_name] = State.STOPPED


@pytest.fixture
def fake_driver():
    global CLOUD
    CLOUD.__init__()
    register_driver("fake", FakeDriver)
    try:
        yield CLOUD
    finally:
        register_driver("fake", None)


def driver_under_test(cls, tmp_path, name: str = "m1", *, options: dict | None = None, config=None,
                      journal=None, peers=None, environ: dict | None = None):
    """A driver built as the core builds one: options validated into its Config, a scratch context.

    `config` (a Config) is used as is when given (e.g. a copy of another driver's, as a
    later `machine rm` would load it); `peers` returns the other machines' Claims.
    """
    from machine.driver import DriverContext, Journal

    mdir = tmp_path / "machines" / name  # made by the test when it calls create(), as the core would
    if config is None:
        config = cls.Config.from_options(dict(options or {}), driver_name=cls.name, machine_name=name,
                                         environ=environ)
    ctx = DriverContext.scratch(name, mdir, root=tmp_path)
    ctx = DriverContext(**{**ctx.__dict__, "journal": journal if journal is not None else Journal(),
                           "peer_claims": peers or (lambda: [])})
    return cls(config, ctx)
