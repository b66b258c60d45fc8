#!/usr/bin/env python3
"""Wall time of `machine create -n 1`, `-n 3`, `-n 5` on qemu, and the ratio to one host.

    flock /tmp/machine-vm.lock python bench/bench_batch.py              # 1, 3, 5 machines
    flock /tmp/machine-vm.lock python bench/bench_batch.py --counts 1,3 --memory 512

Each batch runs through the real `machine` program in a throw-away store whose cache/
points at the shared image cache ($MACHINE_TEST_CACHE, default /var/tmp/machine-test-cache),
with the golden image (engine baked in), and is removed before the next. Printed per batch:
wall time, ratio to one host, the slowest machine's steps (from its record), and the
host's core count and accelerator, which bound the ratio: under TCG every VM's CPU is
emulated, so N booting VMs share the host's cores and the ratio grows with N/cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CACHE = Path(os.environ.get("MACHINE_TEST_CACHE", "/var/tmp/machine-test-cache"))


def run(env, *args, timeout=3600):
    return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,3,5")
    ap.add_argument("--memory", type=int, default=512)
    ap.add_argument("--parallel", type=int, default=0, help="--parallel (0: the driver's default)")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    from machine.drivers.qemu.process import choose_accel

    accel = choose_accel("auto")
    cores = os.cpu_count() or 1
    print(f"host: {cores} cores, accelerator {accel}, {args.memory} MiB per VM, golden image", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        CACHE.mkdir(parents=True, exist_ok=True)
        (store / "cache").symlink_to(CACHE, target_is_directory=True)
        env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(Path(tmp) / "docker"))
        for n in counts:
            extra = ["--parallel", str(args.parallel)] if args.parallel else []
            t0 = time.monotonic()
            p = run(env, "create", "-d", "qemu", "-n", str(n), "--name-template", f"b{n}-{{n}}",
                    "--qemu-memory", str(args.memory), "--qemu-network-mode", "isolated", *extra)
            wall = time.monotonic() - t0
            names = run(env, "ls", "-q").stdout.split()
            steps = {}
            for name in names:
                own = store / "machines" / name / "machine.json"
                if own.exists():
                    steps[name] = json.loads(own.read_text())["Machine"].get("StepTimes", {})
            run(env, "rm", "-f", "-y", *names)
            if p.returncode != 0:
                print(f"-n {n}: FAILED after {wall:.0f}s\n{p.stdout}{p.stderr[-2000:]}", flush=True)
                return 1
            results[n] = wall
            slowest = max(steps.items(), key=lambda kv: sum(v for v in kv[1].values() if isinstance(v, (int, float))),
                          default=(None, {}))
            detail = ", ".join(f"{k} {v:.0f}s" for k, v in slowest[1].items() if isinstance(v, (int, float)) and v >= 1)
            ratio = wall / results[counts[0]] if counts[0] == 1 and 1 in results else float("nan")
            print(f"-n {n}: {wall:6.1f}s wall   ratio to one host {ratio:4.2f}x   slowest {slowest[0]}: {detail}",
                  flush=True)
    if 1 in results:
        for n in counts:
            if n > 1:
                bound = "cores" if n > cores else "I/O and the host"
                print(f"ratio for {n} hosts: {results[n] / results[1]:.2f}x (goal <= 1.5x for 3 where cores allow; "
                      f"{n} TCG VMs on {cores} cores: bounded by {bound})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
