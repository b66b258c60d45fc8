"""The journal: what a driver creates is in config.json the moment it exists."""
from __future__ import annotations

import json

import pytest

from fakes import fake_driver  # noqa: F401
from machine.api import Machines
from machine.driver import DriverContext, Journal
from machine.errors import MachineError


def test_driver_keeps_the_callers_empty_journal(tmp_path):
    from fakes import FakeConfig, FakeDriver

    j = Journal()
    ctx = DriverContext.scratch("m1", tmp_path / "m1")
    ctx = DriverContext(**{**ctx.__dict__, "journal": j})
    d = FakeDriver(FakeConfig(), ctx)
    assert d.journal is j  # an empty journal is falsy: it must not be swapped for a fresh one


def test_journal_persisted_and_rolled_back(store_path, fake_driver):
    fake_driver.fail_at = "after-first"
    m = Machines(store_path)
    with pytest.raises(MachineError) as e:
        m.create("j1", "fake")
    assert "create-host" in str(e.value) and "capacity exhausted" in str(e.value)
    assert fake_driver.journal_on_disk == [[{"kind": "disk", "id": "disk-j1"}]]
    assert fake_driver.removed == ["disk-j1"] and fake_driver.resources == {}  # rollback saw everything
    assert not (store_path / "machines/j1").exists()


def test_interrupt_rolls_back_everything(store_path, fake_driver):
    fake_driver.fail_at = "after-all"
    with pytest.raises(MachineError, match="interrupted during create-host"):
        Machines(store_path).create("j3", "fake")
    assert sorted(fake_driver.removed) == ["disk-j3", "vm-j3"] and fake_driver.resources == {}


def test_keep_on_failure_leaves_journal_for_rm(store_path, fake_driver):
    fake_driver.fail_at = "after-first"
    m = Machines(store_path)
    with pytest.raises(MachineError, match="machine provision j2"):
        m.create("j2", "fake", keep_on_failure=True)
    rec = json.loads((store_path / "machines/j2/machine.json").read_text())
    assert [e["id"] for e in rec["Machine"]["Journal"]] == ["disk-j2"]
    assert rec["Machine"]["Phase"] == "failed" and rec["Machine"]["FailedStep"] == "create-host"
    assert fake_driver.removed == []
    m.rm("j2")
    assert fake_driver.removed == ["disk-j2"]
    assert not (store_path / "machines/j2").exists()
