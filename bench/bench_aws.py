#!/usr/bin/env python3
"""AWS API calls of the aws driver: per create (on demand, spot, Elastic IP), per rm, and per
`ls` of N machines (batched: one DescribeInstances per region; per machine: one each).

    python bench/bench_aws.py [-n 50]

Against moto's server on 127.0.0.1 started here (real boto3 over HTTP); calls are counted
with a botocore before-call hook on every client the driver makes. Nothing leaves loopback.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50, help="machines for the ls figure")
    args = ap.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_EC2_METADATA_DISABLED="true")
    from aws.motoserver import UBUNTU_AMI, MotoServer

    from machine.driver import DriverContext
    from machine.drivers.aws import AWSConfig, AWSDriver, client

    srv = MotoServer().start()
    counts: collections.Counter = collections.Counter()
    client.HOOKS.append(("before-call.ec2", lambda model=None, **kw: counts.update([model.name])))
    AWSDriver.poll_interval = 0.05
    tmp = Path(tempfile.mkdtemp(prefix="bench-aws-"))

    def driver(name, **opts):
        cfg = AWSConfig.from_options({"endpoint_url": srv.url, "ami": UBUNTU_AMI, **opts}, driver_name="aws",
                                     machine_name=name)
        (tmp / name).mkdir(exist_ok=True)
        return AWSDriver(cfg, DriverContext.scratch(name, tmp / name, root=tmp / "scratch"))

    def measure(label, fn):
        counts.clear()
        t = time.perf_counter()
        fn()
        ms = (time.perf_counter() - t) * 1000
        total = sum(counts.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"{label:<44} {total:>4} calls {ms:>8.0f} ms   {detail}")
        return total

    print(f"moto server {srv.url}")
    for label, opts in (("on-demand", {}), ("spot", {"request_spot_instance": True, "spot_price": "0.05"}),
                        ("elastic IP (new)", {"elastic_ip": "new"}), ("ami looked up", {"ami": ""})):
        d = driver("bench-" + label.split()[0], **opts)
        measure(f"create ({label}): pre-check + create", lambda: (d.pre_create_check(), d.create()))
        measure(f"rm ({label})", d.remove)
        srv.reset()

    ds = []
    counts.clear()
    for i in range(args.n):
        d = driver(f"ls{i:02d}")
        d.create()
        ds.append(d)
    print(f"{args.n} machines created")
    fresh = []
    for d in ds:   # `ls` reads records: drivers built anew from what each record holds
        f = AWSDriver(AWSConfig.from_record(d.config.to_record()), d.ctx)
        fresh.append(f)
    measure(f"ls of {args.n}: batch_states (one per region)", lambda: AWSDriver.batch_states(fresh))
    measure(f"ls of {args.n}: state() per machine", lambda: [f.state() for f in fresh])
    for d in ds:
        d.remove()
    left = srv.leftovers()
    print("left in moto:", left or "nothing")
    srv.stop()


if __name__ == "__main__":
    main()
