"""`machine create -d virtualbox` through the real CLI: without VirtualBox, and with the stand-in
VBoxManage up to an SSH step that cannot succeed (nothing answers on the forwarded port)."""
from __future__ import annotations

import pytest

from virtualbox.standin import no_vboxmanage, vbox, vbox_image  # noqa: F401



@pytest.fixture(autouse=True)
def _fresh_create_command():
    """Work-around: machine/cli/create.py adds a driver's options to the one shared `create`
    command and skips fields already there, so in-process runs with two drivers that share a
    field name (memory, disk_size, …) would lose the second driver's flags."""
    from machine.cli.create import DRIVER_PARAM_PREFIX, create

    def strip():
        create.params[:] = [p for p in create.params if not (p.name or "").startswith(DRIVER_PARAM_PREFIX)]
    strip()
    yield
    strip()


def test_without_virtualbox_one_line_nothing_recorded(cli, no_vboxmanage, store_path):
    r = cli("create", "-d", "virtualbox", "x")
    assert r.code == 1, r
    lines = [ln for ln in r.err.splitlines() if ln.strip() and not ln.startswith("(")]
    errors = [ln for ln in lines if "VBoxManage" in ln]
    assert len(errors) == 1 and "VBoxManage not found" in errors[0], r.err
    assert not (store_path / "machines" / "x").exists()
    assert not any((store_path / "machines").glob("*")) if (store_path / "machines").exists() else True


def test_without_virtualbox_real_program(machine_bin, no_vboxmanage, store_path):
    """What a user's shell shows: exactly one line on stderr, exit status 1."""
    import os
    import sys

    env = {"PATH": f"{no_vboxmanage}{os.pathsep}{os.path.dirname(sys.executable)}"}
    r = machine_bin("create", "-d", "virtualbox", "x", env=env)
    assert r.code == 1
    err = [ln for ln in r.err.splitlines() if ln.strip()]
    assert err[0] == "(x) pre-create-check" and len(err) == 2, r.err     # the progress line, then the error
    assert err[1].startswith("Error: VBoxManage not found"), r.err
    r = machine_bin("create", "-q", "-d", "virtualbox", "x", env=env)
    assert r.code == 1
    assert [ln for ln in r.err.splitlines() if ln.strip()] == [err[1]], r.err
    assert not (store_path / "machines" / "x").exists()


def test_create_rolls_back_when_ssh_never_answers(cli, vbox, vbox_image, store_path):
    r = cli("create", "-d", "virtualbox", "--virtualbox-image", str(vbox_image), "--virtualbox-hostonly-cidr",
            "192.168.56.1/24", "--virtualbox-no-share", "--ssh-timeout", "2", "vbx")
    assert r.code == 1, r
    assert "nothing was left behind" in r.err, r.err
    assert vbox.vms() == {}
    assert not (store_path / "machines" / "vbx").exists()
    assert [a[0] for a in vbox.log()].count("unregistervm") == 1


def test_help_has_docker_machine_flags(cli):
    r = cli("create", "-d", "virtualbox", "--help")
    assert r.code == 0
    for flag in ("--virtualbox-memory", "--virtualbox-cpu-count", "--virtualbox-disk-size",
                 "--virtualbox-hostonly-cidr", "--virtualbox-hostonly-nictype", "--virtualbox-hostonly-nicpromisc",
                 "--virtualbox-nat-nictype", "--virtualbox-no-share", "--virtualbox-share-folder",
                 "--virtualbox-no-vtx-check", "--virtualbox-image"):
        assert flag in r.out, flag
