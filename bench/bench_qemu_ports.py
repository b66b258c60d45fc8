"""How fast the port-forward agent follows the engine: event -> 127.0.0.1 port bound -> released.

A real QEMU (no guest, user-mode netdev, isolated) takes the forwards through QMP; the engine
is the tests' stand-in speaking /containers/json and /events over mutual TLS. No VM boots, so
this measures the agent alone (what a user adds on top of `docker run`).

    python3 bench/bench_qemu_ports.py [--containers 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "drivers")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=20)
    args = ap.parse_args()

    from test_qemu_ports import FakeEngine, _container  # the tests' engine stand-in

    from machine.drivers.qemu import agent, ports, process

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sock, pidf = d / "q.sock", d / "q.pid"
        qemu = process.launch(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                               "-netdev", "user,id=nat0,restrict=on", "-qmp", f"unix:{sock},server=on,wait=off",
                               "-pidfile", str(pidf), "-daemonize"], str(pidf), timeout=30)
        mdir = d / "m"
        mdir.mkdir()
        engine = FakeEngine(mdir)
        try:
            t0 = time.monotonic()
            agent.spawn(mdir, str(sock), engine.port, qemu)
            while not engine.subscribers:
                time.sleep(0.01)
            print(f"agent up and subscribed: {time.monotonic() - t0:.2f}s")
            add, rm = [], []
            for i in range(args.containers):
                p = ports.free_port("tcp")
                engine.containers.append(_container(f"c{i}", ("0.0.0.0", 80, p, "tcp")))
                t = time.monotonic()
                engine.emit("start", f"c{i}")
                while ports.port_free(p):
                    time.sleep(0.002)
                add.append(time.monotonic() - t)
            for i in range(args.containers):
                p = engine.containers[0]["Ports"][0]["PublicPort"]
                engine.containers.pop(0)
                t = time.monotonic()
                engine.emit("die", f"c{i}")
                while not ports.port_free(p):
                    time.sleep(0.002)
                rm.append(time.monotonic() - t)
            ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
            print(f"event -> port bound on 127.0.0.1 ({args.containers} containers, each a resync of up to "
                  f"{args.containers}): {ms(add)}")
            print(f"event -> port released: {ms(rm)}")
        finally:
            agent.stop(mdir)
            engine.close()
            process.kill_pid(qemu)


if __name__ == "__main__":
    main()
