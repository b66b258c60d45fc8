"""The virtualbox driver on a real VirtualBox. Skipped unless a real VBoxManage is on PATH
(VirtualBox cannot run on the project's CI machines; everything else is verified against the
fixtures and the stand-in VBoxManage in this folder).

Run on a machine with VirtualBox (and internet, or a local cloud image):

    MACHINE_TEST_VBOX_IMAGE=/path/to/debian-12-generic-amd64.qcow2 \\
        python3 -m pytest -m vm tests/virtualbox/test_virtualbox_real.py -s

Without MACHINE_TEST_VBOX_IMAGE the driver downloads its default image (Debian 12 generic cloud).
It creates one machine (`machine create -d virtualbox`), checks `docker --context` answers over TLS,
stops, starts and removes it, then checks VirtualBox holds nothing of it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from virtualbox.standin import BIN

pytestmark = [pytest.mark.vm]


def _real_vboxmanage() -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d) / "VBoxManage"
        if p.is_file() and os.access(p, os.X_OK) and p.resolve().parent != BIN.resolve():
            try:
                subprocess.run([str(p), "--version"], capture_output=True, timeout=30, check=True)
            except (OSError, subprocess.SubprocessError):
                return None
            return str(p)
    return None


REAL = _real_vboxmanage()
needs_virtualbox = pytest.mark.skipif(REAL is None, reason="needs a real VirtualBox (VBoxManage on PATH)")


@needs_virtualbox
def test_create_docker_stop_start_rm(machine_bin, store_path):
    name = "vbox-real-test"
    args = ["create", "-d", "virtualbox", "--virtualbox-memory", "1024", "--ssh-timeout", "600"]
    if os.environ.get("MACHINE_TEST_VBOX_IMAGE"):
        args += ["--virtualbox-image", os.environ["MACHINE_TEST_VBOX_IMAGE"]]
    if os.environ.get("MACHINE_TEST_VBOX_CIDR"):
        args += ["--virtualbox-hostonly-cidr", os.environ["MACHINE_TEST_VBOX_CIDR"]]
    try:
        r = machine_bin(*args, name, timeout=1800)
        assert r.code == 0, r.err
        if shutil.which("docker"):
            v = subprocess.run(["docker", "--context", name, "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True, timeout=60)
            assert v.returncode == 0 and v.stdout.strip(), v.stderr
        assert machine_bin("status", name).out.strip() == "Running"
        assert machine_bin("stop", name, timeout=300).code == 0
        assert machine_bin("status", name).out.strip() == "Stopped"
        assert machine_bin("start", name, timeout=900).code == 0
    finally:
        machine_bin("rm", "-y", "-f", name, timeout=300)
    vms = subprocess.run([REAL, "list", "vms"], capture_output=True, text=True).stdout
    assert f'"{name}"' not in vms
