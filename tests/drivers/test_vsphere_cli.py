"""`machine create -d vsphere` through the real CLI against vcsim: rollback and typed credentials."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from vsphere.fixtures import PASSWORD, USER, vcsim, vm_names, vsphere_env, vsphere_opts  # noqa: F401
from vsphere.vcsim_harness import TEMPLATE

pytestmark = [pytest.mark.vsphere, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
NOBODY = "127.30.0.250"     # a loopback address where nothing listens



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


def flags(sim, *extra, prefix="--vsphere-"):
    return ["-d", "vsphere", f"{prefix}vcenter", sim.host, f"{prefix}vcenter-port", str(sim.port),
            "--vsphere-ca-cert", sim.cert_file, f"{prefix}clone-from", TEMPLATE, f"{prefix}disk-size", "2048",
            "--vsphere-ip-timeout", "5", *extra]


@pytest.fixture
def no_keyring(monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


def test_create_without_ssh_leaves_no_vm(cli, vsphere_env, vm_names, store_path):
    r = cli("create", *flags(vsphere_env, "--vsphere-cfgparam", f"SET.guest.ipAddress={NOBODY}"),
            "--ssh-timeout", "3", "nossh")
    assert r.code == 1, r
    err = r.err.strip().splitlines()
    assert any("nothing was left behind" in line for line in err), r.err
    assert vm_names() == []
    assert not (store_path / "machines" / "nossh").exists()


def test_typed_password_only_in_a_0600_file(cli, vcsim, vm_names, store_path, monkeypatch, no_keyring):
    for var in ("VSPHERE_USERNAME", "VSPHERE_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    secret = "s3cret"
    assert PASSWORD == secret
    # docker-machine's spellings, as users' scripts pass them
    r = cli("create", *flags(vcsim, "--vmwarevsphere-username", USER, "--vmwarevsphere-password", secret,
                             "--vsphere-cfgparam", f"SET.guest.ipAddress={NOBODY}"),
            "--keep-on-failure", "--ssh-timeout", "2", "pw")
    assert r.code == 1 and "machine provision pw" in r.err, r
    assert vm_names() == ["pw"]
    mdir = store_path / "machines" / "pw"
    holders = [p for p in store_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert holders == [mdir / "credentials.json"], holders
    assert stat.S_IMODE(os.stat(holders[0]).st_mode) == 0o600
    record = json.loads((mdir / "config.json").read_text())
    assert "Password" not in record["Driver"] and record["Driver"]["Username"] == USER
    # later commands log in with the kept password (no env, no flag)
    r = cli("status", "pw")
    assert r.code == 0 and r.out.strip() == "Running", r
    r = cli("stop", "pw")
    assert r.code == 0, r
    r = cli("rm", "-y", "pw")
    assert r.code == 0, r
    assert vm_names() == [] and not mdir.exists()


def test_env_credentials_never_stored(cli, vsphere_env, vm_names, store_path):
    r = cli("create", *flags(vsphere_env, "--vsphere-cfgparam", f"SET.guest.ipAddress={NOBODY}"),
            "--keep-on-failure", "--ssh-timeout", "2", "envpw")
    assert r.code == 1, r
    holders = [p for p in store_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert holders == []
    assert not (store_path / "machines" / "envpw" / "credentials.json").exists()
    r = cli("rm", "-y", "envpw")
    assert r.code == 0, r
    assert vm_names() == []


def test_bad_login_one_line_nothing_recorded(cli, vsphere_env, vm_names, store_path, monkeypatch):
    monkeypatch.setenv("VSPHERE_PASSWORD", "wrong")
    r = cli("create", *flags(vsphere_env), "bad")
    assert r.code == 1
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert any("refused the login of 'admin'" in ln for ln in lines), r.err
    assert not (store_path / "machines" / "bad").exists() and vm_names() == []


def test_boot2docker_url_explains(cli, vsphere_env):
    r = cli("create", *flags(vsphere_env, "--vmwarevsphere-boot2docker-url", "https://x/b2d.iso"), "b2d")
    assert r.code != 0 and "boot2docker-url is not supported" in r.err, r


def test_help_lists_flags_hides_aliases(cli):
    r = cli("create", "-d", "vsphere", "--help")
    assert r.code == 0
    assert "--vsphere-clone-from" in r.out and "--vsphere-password" in r.out
    assert "--vmwarevsphere" not in r.out
