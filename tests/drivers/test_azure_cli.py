"""The azure driver through the core and the real `machine` program, against the ARM emulator.

A failure at every call of create, and Ctrl-C mid-create, leave nothing in the emulator and
no record; bad credentials, image, size or quota are one line before anything exists; a
typed client secret stays out of config.json and still removes the machine later;
`machine env`/`ls` load no management SDK.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("azure.mgmt.compute")

from emulators.azure import CLIENT_ID, CLIENT_SECRET, TENANT  # noqa: E402
from emulators.clitests import (env_with_store, fail_every_call, interrupt_create, loaded_modules,  # noqa: E402
                                sdk_modules)
from emulators.fixtures import azure_emu, azure_env, azure_flags, azure_options  # noqa: E402,F401

from machine.errors import MachineError  # noqa: E402

INJECTED = (400, {"error": {"code": "InternalOperationError", "message": "injected failure"}})


@pytest.fixture
def api(azure_env):
    from machine.api import Machines

    return Machines()


def test_a_failure_at_every_call_of_create_leaves_nothing(api, azure_emu):
    n = fail_every_call(api, azure_emu, "azure", azure_options(azure_emu), INJECTED)
    assert n >= 20


@pytest.mark.parametrize("when", ["request", "poll"])
def test_ctrl_c_mid_create_leaves_nothing(azure_emu, azure_env, when, machine_bin):
    code, out, err = interrupt_create(
        ["create", "-d", "azure", *azure_flags(azure_emu), "sig"], env_with_store(azure_env), azure_emu,
        lambda m, p: m == "PUT" and "/virtualMachines/" in p, when=when,
        op_delay=lambda s: setattr(azure_emu, "lro_seconds", s))
    assert code != 0 and "interrupted" in err, err
    azure_emu.lro_seconds = 0
    azure_emu.settle()
    assert azure_emu.owned() == []
    assert machine_bin("ls", "-q").out.strip() == ""


@pytest.mark.parametrize("change, expect", [
    ({"size": "Standard_Nope"}, "VM size Standard_Nope is not offered in westus"),
    ({"image": "canonical:nothing:here:latest"}, "image canonical:nothing:here:latest is not available"),
    ("quota", "quota exceeded: Standard_B2s needs 2 vCPUs"),
    ("credentials", "Azure did not accept the credentials"),
])
def test_bad_input_is_one_line_before_anything_exists(machine_bin, azure_emu, azure_env, monkeypatch, change, expect):
    flags = azure_flags(azure_emu, **(change if isinstance(change, dict) else {}))
    if change == "quota":
        azure_emu.quota["cores"] = 1
    if change == "credentials":
        monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    # the real program: one process per create, as users run it
    r = machine_bin("create", "-q", "-d", "azure", *flags, "bad")
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.err
    assert azure_emu.api_calls(mutating=True) == [] and azure_emu.owned() == []
    assert machine_bin("ls", "-q").out.strip() == ""


def test_typed_client_secret_is_kept_out_of_config_json(api, azure_emu, monkeypatch):
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    opts = azure_options(azure_emu, **{"client-id": CLIENT_ID, "tenant-id": TENANT, "client-secret": CLIENT_SECRET,
                                       "authority-host": azure_emu.url})
    with pytest.raises(MachineError):
        api.create("sp", "azure", opts, keep_on_failure=True, ssh_deadline_s=1)
    text = (api.store.machine_dir("sp") / "config.json").read_text()
    assert CLIENT_SECRET not in text
    assert json.loads(text)["Driver"]["ClientID"] == CLIENT_ID
    assert any(r.endswith("/virtualMachines/sp") for r in azure_emu.owned())
    api.rm("sp")          # a later command finds the secret where create kept it
    azure_emu.settle()
    assert azure_emu.owned() == []


def test_env_and_ls_load_no_management_sdk(api, azure_emu, azure_env):
    opts = azure_options(azure_emu)
    for name in ("e1", "e2"):
        with pytest.raises(MachineError):
            api.create(name, "azure", opts, keep_on_failure=True, ssh_deadline_s=1)
        host = api.store.load(name)
        host.machine.url = f"tcp://{host.driver.ip_address}:2376"
        host.machine.phase = "ready"
        api.store.save(host)
    env = env_with_store(azure_env)
    code, mods, out = loaded_modules(["env", "--shell", "bash", "e1"], env)
    assert code == 0 and "DOCKER_HOST" in out
    assert [m for m in mods if m.split(".")[0] == "azure"] == []
    code, mods, out = loaded_modules(["ls"], env)
    assert code == 0, out
    assert sdk_modules(mods) == [], sdk_modules(mods)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "Running" in rows["e1"] and "Running" in rows["e2"], out
    api.rm("e1")
    api.rm("e2")
    azure_emu.settle()
    assert azure_emu.owned() == []
