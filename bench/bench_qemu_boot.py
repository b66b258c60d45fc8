#!/usr/bin/env python3
"""Boot→SSH time and host memory per VM for the cached image, through the qemu driver.

For each VM: create() time (overlay + seed + qemu start), boot→SSH seconds (from
create() returning to the first command run over SSH), and the QEMU process's RSS
on the host right after SSH answers and after a short settle. VMs boot in
parallel (at most 2 here: 2 cores, ~1 GB of host memory each under TCG) and are
removed at the end.

Usage: python bench/bench_qemu_boot.py [--vms 1] [--memory 1024] [--image engine|base|PATH]
                                       [--accel auto] [--settle 20]
Images come from $MACHINE_TEST_CACHE (default /var/tmp/machine-test-cache), built if missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=1)
    ap.add_argument("--memory", type=int, default=1024)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--image", default="engine")
    ap.add_argument("--accel", default="auto")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to wait before the second RSS reading")
    args = ap.parse_args()

    import logging

    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # banner retries while sshd starts
    from harness.vm import VMPool, ensure_image, vm_capable
    from machine.drivers.qemu import process

    reason = vm_capable()
    if reason:
        print(f"cannot run VMs here: {reason}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.image in ("engine", "base"):
        img = ensure_image(engine=args.image == "engine")
        print(f"image          {args.image} {img.dir.name} ({time.monotonic() - t0:.1f}s to build or find)")
    with tempfile.TemporaryDirectory(prefix="bench-qemu-") as tmp:
        store = Path(tmp)
        from harness.vm import TEST_CACHE

        (store / "cache").symlink_to(TEST_CACHE, target_is_directory=True)
        pool = VMPool(store, max_vms=max(2, args.vms))
        rows = []
        try:
            vms = []
            for i in range(args.vms):
                vm = pool.create(f"bench{i}", wait=False, memory=args.memory, cpus=args.cpus,
                                 accel=args.accel, image=args.image)
                vms.append(vm)
            errors = []

            def wait(vm):
                try:
                    vm.boot_seconds = vm.wait_ssh()
                    vm.rss_ready = process.rss_bytes(vm.driver.pid())
                except Exception as e:
                    errors.append(f"{vm.name}: {e}")

            threads = [threading.Thread(target=wait, args=(vm,)) for vm in vms]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                print("\n".join(errors), file=sys.stderr)
                return 1
            time.sleep(args.settle)
            accel = vms[0].driver.config.accel_used
            print(f"accel          {accel}   memory {args.memory} MiB   cpus {args.cpus}   vms {args.vms} (parallel)")
            print(f"{'vm':<8} {'create s':>9} {'boot→ssh s':>11} {'RSS at ssh':>11} {'RSS +settle':>12}")
            for vm in vms:
                rss = process.rss_bytes(vm.driver.pid())
                rows.append((vm.name, vm.create_seconds, vm.boot_seconds, vm.rss_ready, rss))
                print(f"{vm.name:<8} {vm.create_seconds:>9.2f} {vm.boot_seconds:>11.1f} "
                      f"{vm.rss_ready / 2**20:>8.0f} MiB {rss / 2**20:>9.0f} MiB")
        finally:
            pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
