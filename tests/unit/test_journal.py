"""The journal: what a driver creates is in config.json the moment it exists."""
from __future__ import annotations

import json

from machine.api import Machines
from machine.driver import Driver, Journal
from machine.model import State


def test_driver_keeps_the_callers_empty_journal():
    j = Journal()
    d = Driver("m1", "/tmp/nowhere/machines/m1", {}, journal=j)
    assert d.journal is j  # an empty journal is falsy: it must not be swapped for a fresh one


class RecordingDriver(Driver):
    """A driver whose create fails after journaling two resources."""

    name = "recording"
    removed: list = []
    seen_on_disk: list = []

    def create(self):
        self.journal.record("thing", "a1")
        # persisted already: read config.json as another process would
        store = self.store_path
        self.seen_on_disk.append(json.loads(open(f"{store}/machines/{self.machine_name}/config.json").read())
                                 ["Machine"]["Journal"])
        self.journal.record("thing", "a2")
        raise RuntimeError("quota exceeded")

    def remove(self):
        RecordingDriver.removed.extend(e["id"] for e in self.journal)

    def state(self):
        return State.RUNNING


def test_journal_persisted_and_rolled_back(store_path, monkeypatch):
    import machine.api as api_mod

    monkeypatch.setattr(api_mod, "get_driver_class", lambda name: RecordingDriver)
    m = Machines(store_path)
    try:
        m.create("j1", "recording")
    except Exception as e:
        assert "create-host" in str(e) and "quota exceeded" in str(e)
    else:
        raise AssertionError("create should have failed")
    assert RecordingDriver.seen_on_disk == [[{"kind": "thing", "id": "a1"}]]
    assert RecordingDriver.removed == ["a1", "a2"]  # rollback saw everything
    assert not (store_path / "machines/j1").exists()


def test_keep_on_failure_leaves_journal_for_rm(store_path, monkeypatch):
    import machine.api as api_mod

    RecordingDriver.removed = []
    monkeypatch.setattr(api_mod, "get_driver_class", lambda name: RecordingDriver)
    m = Machines(store_path)
    try:
        m.create("j2", "recording", keep_on_failure=True)
    except Exception as e:
        assert "machine provision j2" in str(e)
    rec = json.loads((store_path / "machines/j2/config.json").read_text())
    assert [e["id"] for e in rec["Machine"]["Journal"]] == ["a1", "a2"]
    assert rec["Machine"]["Phase"] == "failed" and rec["Machine"]["FailedStep"] == "create-host"
    assert RecordingDriver.removed == []
    m.rm("j2")
    assert RecordingDriver.removed == ["a1", "a2"]
    assert not (store_path / "machines/j2").exists()
