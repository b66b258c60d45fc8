#!/usr/bin/env python3
"""Cold-start wall time of the everyday verbs, against a store of 200 `none` machines,
each next to `python3 -c pass` of the same interpreter (the floor no Python program beats).

Every command runs as a fresh process, as a shell prompt, an `eval` line or a CI loop
starts it; the commands are interleaved run by run so a busy machine slows them all
alike. Each verb runs on the light path (machine/fast.py, what `machine` does) and on the
full click CLI (MACHINE_NO_FAST=1, which is what every verb cost before the light path).

Goal (issue 14): <= 1.5x the floor for env, config, url, active; <= 2x for inspect and
ls -q with 200 machines.

Usage: python bench/bench_startup.py [--machines 200] [--runs 15] [--no-full] [--no-pyc] [--instructions]

--instructions counts the instructions each command executes under valgrind's callgrind
instead of timing it: the same on a busy machine as on an idle one (one run each, slow).

Byte code: an installed package has its .pyc files; a source checkout run with
PYTHONDONTWRITEBYTECODE=1 recompiles every module on every start, which is not what users
run. So the measured processes write and reuse byte code in a temporary
PYTHONPYCACHEPREFIX (the checkout is not touched); --no-pyc measures without it.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GOALS = {"env": 1.5, "config": 1.5, "url": 1.5, "active": 1.5, "inspect": 2.0, "ls -q": 2.0}


def populate(store: str, count: int) -> None:
    """Write `count` none machines through the API (one CA, real records)."""
    sys.path.insert(0, REPO)
    from machine.api import Machines

    m = Machines(store)
    for i in range(count):
        # Port 9 on loopback (discard) is closed here: ls sees "refused" at once, as for a host that is down.
        m.create(f"bench-{i:03d}", "none", {"url": "tcp://127.0.0.1:9"}, context=False)
    # The docker context of one machine, so `active` has an answer (as in a prompt after `machine use`).
    from machine import clientconfig

    mdir = os.path.join(store, "machines", "bench-000")
    pem = {f: open(os.path.join(mdir, f), "rb").read() for f in ("ca.pem", "cert.pem", "key.pem")}
    clientconfig.write_context("bench-000", docker_host="tcp://127.0.0.1:9", ca_pem=pem["ca.pem"],
                               cert_pem=pem["cert.pem"], key_pem=pem["key.pem"])
    clientconfig.use_context("bench-000")


def run_once(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; exits if the command fails."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.decode()[-300:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def instructions(cmd: list[str], env: dict) -> int:
    """Instructions `cmd` executes, counted by callgrind (deterministic; load does not change it)."""
    import re
    import shutil

    vg = shutil.which("valgrind")
    if not vg:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    p = subprocess.run([vg, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        raise SystemExit(f"{' '.join(cmd)} failed under callgrind: {p.stderr[-300:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-full", action="store_true", help="skip the full-CLI (before) column")
    ap.add_argument("--no-pyc", action="store_true", help="no byte-code cache (every module compiled each run)")
    ap.add_argument("--instructions", action="store_true", help="count instructions with callgrind, not time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        docker = os.path.join(tmp, "docker")
        env = dict(os.environ, MACHINE_STORAGE_PATH=store, DOCKER_CONFIG=docker)
        for var in ("MACHINE_NO_FAST", "MACHINE_DEBUG", "DOCKER_HOST", "DOCKER_CONTEXT"):
            env.pop(var, None)
        if not args.no_pyc:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        os.environ["DOCKER_CONFIG"] = docker  # populate's `machine use`
        t0 = time.perf_counter()
        populate(store, args.machines)
        print(f"populated {args.machines} none machines in {time.perf_counter() - t0:.2f}s; "
              f"{args.runs} interleaved runs per command; {'no byte code' if args.no_pyc else 'byte code cached'}")
        py = sys.executable
        exe = [py, "-m", "machine"]
        # The installed console script (pyproject's [project.scripts]) runs machine.fast:main.
        script = [py, "-c", "import sys; from machine.fast import main; sys.exit(main())"]
        verbs = [
            ("--version", ["--version"]),
            ("env", ["env", "--shell", "bash", "bench-000"]),
            ("config", ["config", "--no-check", "bench-000"]),
            ("url", ["url", "bench-000"]),
            ("ip", ["ip", "bench-000"]),
            ("status", ["status", "bench-000"]),
            ("active", ["active"]),
            ("inspect", ["inspect", "bench-000"]),
            ("ls -q", ["ls", "-q"]),
            ("ls -q driver", ["ls", "-q", "--filter", "driver=none"]),  # loads all 200 records
        ]
        cases = [("floor", "python3 -c pass", [py, "-c", "pass"], env)]
        for verb, argv in verbs:
            cases.append((verb, f"machine {' '.join(argv)}", exe + argv, env))
            if not args.no_full:
                cases.append((verb + " (full)", f"  full CLI (MACHINE_NO_FAST=1)", exe + argv,
                              dict(env, MACHINE_NO_FAST="1")))
        cases.append(("env (script)", "machine env, console script entry", script + verbs[1][1], env))
        for _, _, cmd, e in cases:  # warm-up: byte code written, files in the page cache
            run_once(cmd, e)
        if args.instructions:
            counts = {key: instructions(cmd, e) for key, _, cmd, e in cases}
            floor = counts["floor"]
            print(f"{'command':52s} {'instructions':>14s} {'ratio':>6s}  goal")
            for key, label, _, _ in cases:
                goal = GOALS.get(key)
                mark = "" if goal is None else (f"<= {goal:g}x " + ("ok" if counts[key] / floor <= goal else "MISSED"))
                print(f"{label:52s} {counts[key]:14,d} {counts[key] / floor:5.2f}x  {mark}")
            return
        walls: dict[str, list[float]] = {k: [] for k, *_ in cases}
        cpus: dict[str, list[float]] = {k: [] for k, *_ in cases}
        for _ in range(args.runs):
            for key, _, cmd, e in cases:
                w, c = run_once(cmd, e)
                walls[key].append(w)
                cpus[key].append(c)
        floor_w = statistics.median(walls["floor"])
        floor_c = statistics.median(cpus["floor"])
        print(f"{'command':52s} {'median':>8s} {'best':>8s} {'ratio':>6s} {'cpu':>7s} {'ratio':>6s}  goal")
        for key, label, _, _ in cases:
            med, best, cpu = statistics.median(walls[key]), min(walls[key]), statistics.median(cpus[key])
            goal = GOALS.get(key)
            mark = "" if goal is None else (f"<= {goal:g}x " + ("ok" if med / floor_w <= goal else "MISSED"))
            print(f"{label:52s} {med * 1000:6.1f}ms {best * 1000:6.1f}ms {med / floor_w:5.2f}x "
                  f"{cpu * 1000:5.1f}ms {cpu / floor_c:5.2f}x  {mark}")


if __name__ == "__main__":
    main()
