"""Checks both clouds' CLI tests run the same way: a failure at every call of create, Ctrl-C
mid-create through the real `machine` program, and which modules `env`/`ls` load."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

PROBE = """
import json, sys
from machine.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

#: the cloud SDKs `env` and `ls` must not load
SDK_PREFIXES = ("azure.mgmt", "google.cloud", "google.api_core", "googleapiclient", "proto")


def loaded_modules(args, env) -> tuple[int, list[str], str]:
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    last = p.stderr.strip().splitlines()[-1]
    data = json.loads(last)
    return data["code"], data["modules"], p.stdout


def sdk_modules(mods) -> list[str]:
    return [m for m in mods if any(m == p or m.startswith(p + ".") for p in SDK_PREFIXES)]


def fail_every_call(api, emu, driver: str, options: dict, injected: tuple[int, dict]) -> int:
    """Run one create to count its calls, then fail each of them in turn; after every failure
    the emulator must hold nothing and the store no record. Returns the number of calls."""
    from machine.errors import MachineError

    status, body = injected
    start = len(emu.calls)
    try:
        # no SSH server is behind the emulator's address: this create fails at provisioning and rolls back
        api.create("probe", driver, options, ssh_deadline_s=1)
    except MachineError:
        pass
    emu.settle()
    assert emu.owned() == [], emu.owned()
    calls = emu.calls[start:]
    first_delete = next(i for i, c in enumerate(calls) if c.method == "DELETE")
    n = first_delete
    assert n > 5, [(c.method, c.path) for c in calls]
    for i in range(n):
        emu.fail_call(i, status, body)
        name = f"f{i}"
        try:
            api.create(name, driver, options, ssh_deadline_s=1)
        except MachineError as e:
            assert "\n" not in str(e)
        else:
            raise AssertionError(f"create did not fail with call {i} failing")
        emu.settle()
        failed = calls[i]
        assert emu.owned() == [], f"call {i} ({failed.method} {failed.path}) failing left {emu.owned()}"
        assert not api.store.exists(name), f"call {i} failing left the record"
        assert not emu.faults, f"call {i} was never made"
    return n


def interrupt_create(argv, env, emu, match, *, when: str = "request", timeout: float = 180,
                     op_delay=None):
    """Start `machine create …`, send SIGINT while the matching call is in flight (when="request":
    the call was done, its answer is late) or while its operation is polled (when="poll":
    `op_delay(seconds)` makes the operations started from that call on slow, until the signal)."""
    seen = threading.Event()

    def on_call(m, p):
        if match(m, p):
            if when == "poll":
                op_delay(30)
            seen.set()
    emu.on_call = on_call
    if when == "request":
        emu.slow(match, 3.0)
    p = subprocess.Popen([sys.executable, "-m", "machine", *argv], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        if not seen.wait(timeout):
            p.kill()
            raise AssertionError(f"the create never made the call: {p.communicate()[1][-2000:]}")
        time.sleep(0.5 if when == "request" else 1.5)
        p.send_signal(signal.SIGINT)
        if when == "poll":
            op_delay(0)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
        emu.on_call = None
        emu.delays.clear()
    return p.returncode, out, err


def env_with_store(base: dict) -> dict:
    env = dict(base)
    env["MACHINE_STORAGE_PATH"] = os.environ["MACHINE_STORAGE_PATH"]
    env["DOCKER_CONFIG"] = os.environ["DOCKER_CONFIG"]
    return env
