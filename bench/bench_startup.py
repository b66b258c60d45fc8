#!/usr/bin/env python3
"""Cold-start wall time of the everyday verbs, against a store of 200 `none` machines.

Prints median and best of N runs per command (each run is a fresh process, as a
shell loop would start it). Usage: python bench/bench_startup.py [--machines 200] [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def populate(store: str, count: int) -> None:
    """Write `count` none machines through the API (one CA, real records)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from machine.api import Machines

    m = Machines(store)
    for i in range(count):
        # Port 9 on loopback (discard) is closed here: ls sees "refused" at once, as for a host that is down.
        m.create(f"bench-{i:03d}", "none", {"url": f"tcp://127.0.0.1:{9}"}, context=False)


def timed(cmd: list[str], env: dict, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - t0)
        if p.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.decode()[-300:]}")
    return statistics.median(samples), min(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        env = dict(os.environ, MACHINE_STORAGE_PATH=store, DOCKER_CONFIG=os.path.join(tmp, "docker"))
        t0 = time.perf_counter()
        populate(store, args.machines)
        print(f"populated {args.machines} none machines in {time.perf_counter() - t0:.2f}s")
        exe = [sys.executable, "-m", "machine"]
        cases = [
            ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
            ("machine --version", exe + ["--version"]),
            ("machine env bench-000", exe + ["env", "--shell", "bash", "bench-000"]),
            ("machine config bench-000", exe + ["config", "bench-000"]),
            ("machine inspect bench-000", exe + ["inspect", "bench-000"]),
            (f"machine ls -q ({args.machines} machines)", exe + ["ls", "-q"]),
            (f"machine ls ({args.machines} machines, engines probed)", exe + ["ls", "--timeout", "2"]),
        ]
        print(f"{'command':55s} {'median':>9s} {'best':>9s}")
        for label, cmd in cases:
            med, best = timed(cmd, env, args.runs)
            print(f"{label:55s} {med * 1000:8.1f}ms {best * 1000:8.1f}ms")


if __name__ == "__main__":
    main()
