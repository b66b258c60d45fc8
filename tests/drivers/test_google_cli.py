"""The google driver through the core and the real `machine` program, against the Compute emulator.

A failure at every call of create, and Ctrl-C mid-create, leave nothing in the emulator and
no record; bad credentials, image, machine type or quota are one line before anything
exists; `machine env`/`ls` load no Compute SDK (ls asks with one REST call per project).
"""
from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.compute_v1")

from emulators.clitests import (env_with_store, fail_every_call, interrupt_create, loaded_modules,  # noqa: E402
                                sdk_modules)
from emulators.fixtures import google_emu, google_env, google_flags, google_key, google_options  # noqa: E402,F401

from machine.errors import MachineError  # noqa: E402

INJECTED = (400, {"error": {"code": 400, "message": "injected failure",
                            "errors": [{"message": "injected failure", "domain": "global", "reason": "invalid"}]}})


@pytest.fixture
def api(google_env):
    from machine.api import Machines

    return Machines()


def test_a_failure_at_every_call_of_create_leaves_nothing(api, google_emu):
    n = fail_every_call(api, google_emu, "google", google_options(google_emu), INJECTED)
    assert n >= 10


@pytest.mark.parametrize("when", ["request", "poll"])
def test_ctrl_c_mid_create_leaves_nothing(google_emu, google_env, when, machine_bin):
    code, out, err = interrupt_create(
        ["create", "-d", "google", *google_flags(google_emu), "sig"], env_with_store(google_env), google_emu,
        lambda m, p: m == "POST" and p.endswith("/instances"), when=when,
        op_delay=lambda s: setattr(google_emu, "op_seconds", s))
    assert code != 0 and "interrupted" in err, err
    google_emu.op_seconds = 0
    google_emu.settle()
    assert google_emu.owned() == []
    assert machine_bin("ls", "-q").out.strip() == ""


@pytest.mark.parametrize("change, expect", [
    ({"machine-type": "n1-nope-8"}, "machine type n1-nope-8 is not offered in us-central1-a"),
    ({"machine-image": "family/nothing"}, "image family/nothing not found"),
    ("quota", "quota exceeded: CPUS in us-central1 has 0 of 1 in use"),
    ("credentials", "no Google credentials"),
])
def test_bad_input_is_one_line_before_anything_exists(machine_bin, google_emu, google_env, monkeypatch, change, expect):
    flags = google_flags(google_emu, **(change if isinstance(change, dict) else {}))
    if change == "quota":
        google_emu.quota["CPUS"] = 1
    if change == "credentials":
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    # the real program: one process per create, as users run it
    r = machine_bin("create", "-q", "-d", "google", *flags, "bad")
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.err
    assert google_emu.api_calls(mutating=True) == [] and google_emu.owned() == []
    assert machine_bin("ls", "-q").out.strip() == ""


def test_env_and_ls_load_no_compute_sdk(api, google_emu, google_env):
    opts = google_options(google_emu)
    for name in ("e1", "e2"):
        with pytest.raises(MachineError):
            api.create(name, "google", opts, keep_on_failure=True, ssh_deadline_s=1)
        host = api.store.load(name)
        host.machine.url = f"tcp://{host.driver.ip_address}:2376"
        host.machine.phase = "ready"
        api.store.save(host)
    env = env_with_store(google_env)
    code, mods, out = loaded_modules(["env", "--shell", "bash", "e1"], env)
    assert code == 0 and "DOCKER_HOST" in out
    assert [m for m in mods if m.split(".")[0] == "google"] == []
    code, mods, out = loaded_modules(["ls"], env)
    assert code == 0, out
    assert sdk_modules(mods) == [], sdk_modules(mods)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "Running" in rows["e1"] and "Running" in rows["e2"], out
    api.rm("e1")
    api.rm("e2")
    google_emu.settle()
    assert google_emu.owned() == []
