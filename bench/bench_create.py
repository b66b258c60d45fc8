#!/usr/bin/env python3
"""Create time of a real qemu machine, broken down by step, and its SSH round trips.

    python bench/bench_create.py                 # golden image (engine baked in)
    python bench/bench_create.py --image base --bundle DIR   # install from an offline bundle

Uses a throw-away store whose cache/ points at the shared image cache
($MACHINE_TEST_CACHE, default /var/tmp/machine-test-cache), so images are built once.
The machine is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CACHE = Path(os.environ.get("MACHINE_TEST_CACHE", "/var/tmp/machine-test-cache"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="", help="'base' for the image without an engine")
    ap.add_argument("--bundle", default="", help="offline engine bundle (with --image base)")
    ap.add_argument("--memory", type=int, default=1024)
    args = ap.parse_args()

    from machine.api import Machines
    from machine.model import EngineOptions

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        CACHE.mkdir(parents=True, exist_ok=True)
        (store / "cache").symlink_to(CACHE, target_is_directory=True)
        os.environ["DOCKER_CONFIG"] = str(Path(tmp) / "docker")
        m = Machines(store)
        engine = EngineOptions(install="bundle" if args.bundle else "none", bundle=args.bundle)
        marks: list[tuple[str, float]] = []
        t0 = time.monotonic()
        opts = {"memory": args.memory, "network_mode": "isolated"}
        if args.image:
            opts["image"] = args.image
        try:
            host = m.create("bench", "qemu", opts, engine=engine,
                            on_step=lambda s: marks.append((s, time.monotonic() - t0)))
            total = time.monotonic() - t0
            print(f"create total: {total:.1f}s  (image: {args.image or 'engine'}, memory {args.memory} MiB)")
            print(f"{'step':22s} {'seconds':>8s}")
            for step, secs in host.machine.steps.items():
                print(f"{step:22s} {secs:8.1f}")
            print(f"SSH connections after the wait: 1; round trips: {host.machine.extra.get('RoundTrips')}")
            print(f"engine {host.machine.extra.get('EngineVersion')} at {host.url}")
        finally:
            try:
                m.rm("bench", force=True)
            except Exception as e:
                print(f"cleanup failed: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
