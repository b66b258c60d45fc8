"""The stand-in VBoxManage (bin/VBoxManage) as pytest fixtures.

    from virtualbox.standin import vbox, vbox_image  # noqa: F401

`vbox` puts the stand-in first on PATH with a fresh state file and returns a helper:
vbox.state() (the stand-in's VirtualBox), vbox.update(fn), vbox.fault(cmd, fixture=…),
vbox.log() (every argv it was given).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BIN = HERE / "bin"
FIXTURES = HERE / "fixtures"


class StandIn:
    def __init__(self, state_path: Path):
        self.path = state_path
        self.program = str(BIN / "VBoxManage")

    def state(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def update(self, fn) -> None:
        st = self.state()
        fn(st)
        self.path.write_text(json.dumps(st))

    def fault(self, cmd: str, *, fixture: str | None = None, stderr: str | None = None, code: int = 1,
              times: int = 1) -> None:
        f = {"code": code, "times": times}
        if fixture:
            f["fixture"] = fixture
        if stderr:
            f["stderr"] = stderr
        self.update(lambda st: st.setdefault("faults", {}).__setitem__(cmd, f))

    def sleep(self, cmd: str, seconds: float) -> None:
        self.update(lambda st: st.setdefault("sleep", {}).__setitem__(cmd, seconds))

    def log(self) -> list[list[str]]:
        return self.state().get("log", [])

    def vms(self) -> dict:
        return self.state().get("vms", {})

    def hostonlyifs(self) -> dict:
        return self.state().get("hostonlyifs", {})


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def vbox(tmp_path, monkeypatch):
    state = tmp_path / "vbox-standin.json"
    monkeypatch.setenv("VBOX_STANDIN_STATE", str(state))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for var in ("VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"):
        monkeypatch.delenv(var, raising=False)
    s = StandIn(state)
    # this host has VT-x as far as the driver's check is concerned; tests of the check set their own
    from machine.drivers.virtualbox import VirtualBoxDriver

    monkeypatch.setattr(VirtualBoxDriver, "cpuinfo", str(FIXTURES / "cpuinfo-vtx.txt"))
    return s


@pytest.fixture(scope="session")
def vbox_image(tmp_path_factory) -> Path:
    """A small disk image (qcow2 when qemu-img exists, else raw) for --virtualbox-image."""
    d = tmp_path_factory.mktemp("vbox-image")
    if shutil.which("qemu-img"):
        p = d / "cloud.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(p), "64M"], check=True)
    else:
        p = d / "cloud.raw"
        with open(p, "wb") as f:
            f.truncate(64 << 20)
    return p


@pytest.fixture
def no_vboxmanage(tmp_path, monkeypatch):
    """A PATH with python and the usual tools but no VBoxManage."""
    bindir = tmp_path / "bin-no-vbox"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    for var in ("VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"):
        monkeypatch.delenv(var, raising=False)
    if shutil.which("VBoxManage"):
        pytest.skip("VirtualBox is installed here (VBoxManage in /usr/bin)")
    return bindir
