#!/usr/bin/env python3
"""`machine ls` over N hosts that accept a connection and never answer (docker-machine: ~13 s for 200
with its 10 s timeout). Prints wall time against the per-host timeout; goal ≤ 1.2 × timeout.

Usage: python bench/bench_ls_hanging.py [--machines 200] [--timeout 2]
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def silent_server() -> tuple[int, threading.Event]:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    stop, held = threading.Event(), []

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1], stop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from machine.api import Machines

    port, stop = silent_server()
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        m = Machines(store)
        for i in range(args.machines):
            m.create(f"hang-{i:03d}", "none", {"url": f"tcp://127.0.0.1:{port}"}, context=False)
        env = dict(os.environ, MACHINE_STORAGE_PATH=store, DOCKER_CONFIG=os.path.join(tmp, "docker"))
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "machine", "ls", "-t", str(args.timeout)], env=env,
                           capture_output=True, text=True)
        took = time.perf_counter() - t0
    stop.set()
    rows = len(p.stdout.splitlines()) - 1
    print(f"ls over {args.machines} hanging hosts, --timeout {args.timeout:g}s: {took:.2f}s wall "
          f"({took / args.timeout:.2f} x timeout; goal <= 1.2), {rows} rows, exit {p.returncode}")


if __name__ == "__main__":
    main()
