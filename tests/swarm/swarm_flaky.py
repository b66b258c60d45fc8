"""A fake driver whose create fails for the machines named in $MACHINE_TEST_FAIL (comma-separated).

Used in-process (registered with register_driver) and by the real `machine` program in a
subprocess, where it is found through a .dist-info entry point on PYTHONPATH (see
test_batch_cli.py). It reuses tests/fakes.py's FakeDriver: resources go in the journal,
remove() deletes what the journal holds, CLOUD records what was removed.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fakes import CLOUD, FakeDriver  # noqa: E402

from machine.errors import MachineError  # noqa: E402


class FlakyDriver(FakeDriver):
    name = "flaky"
    description = "fake cloud; create fails for the machines in $MACHINE_TEST_FAIL"

    def create(self) -> None:
        doomed = {n for n in os.environ.get("MACHINE_TEST_FAIL", "").split(",") if n}
        if self.machine_name in doomed:
            disk = f"disk-{self.machine_name}"
            CLOUD.resources[disk] = "disk"
            self.journal.record("disk", disk)
            raise MachineError(f"no capacity left for {self.machine_name} in zone {self.config.zone}")
        super().create()
