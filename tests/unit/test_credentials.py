"""Typed credentials: kept outside config.json, 0600, and removed with the machine."""
from __future__ import annotations

import json
import os
import stat

from machine import credentials


def test_file_fallback_is_private_and_roundtrips(tmp_path, monkeypatch):
    monkeypatch.setattr(credentials, "_keyring", lambda: None)  # no usable keyring (as on this machine)
    where = credentials.save(tmp_path, "m1", {"Password": "s3cret"})
    assert where == "file"
    f = tmp_path / credentials.FILENAME
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert json.loads(f.read_text()) == {"Password": "s3cret"}
    assert credentials.load(tmp_path, "m1", "file") == {"Password": "s3cret"}
    credentials.delete(tmp_path, "m1", "file")
    assert not f.exists()
    assert credentials.load(tmp_path, "m1", "file") == {}


def test_nothing_typed_nothing_stored(tmp_path):
    assert credentials.save(tmp_path, "m1", {}) == ""
    assert list(tmp_path.iterdir()) == []


class FakeKeyring:
    """Stands in for the OS keyring service (none runs here); the module's own logic is real."""

    def __init__(self):
        self.data = {}

    def set_password(self, service, name, value):
        self.data[(service, name)] = value

    def get_password(self, service, name):
        return self.data.get((service, name))

    def delete_password(self, service, name):
        self.data.pop((service, name), None)


def test_keyring_preferred_when_usable(tmp_path, monkeypatch):
    kr = FakeKeyring()
    monkeypatch.setattr(credentials, "_keyring", lambda: kr)
    assert credentials.save(tmp_path, "m1", {"Password": "p"}) == "keyring"
    assert not (tmp_path / credentials.FILENAME).exists()
    assert credentials.load(tmp_path, "m1", "keyring") == {"Password": "p"}
    credentials.delete(tmp_path, "m1", "keyring")
    assert kr.data == {}
