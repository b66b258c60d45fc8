"""For the e2e tests: play the guest agent's part on the session's pooled VM.

The emulators' VMs are records with loopback addresses; the test gateway forwards those
addresses to a real QEMU VM. What the cloud's guest agent would do on first boot — create
the admin user the API was given, authorize the SSH key, give it sudo — this thread does on
the pooled VM as soon as the emulator holds the VM with its key.
"""
from __future__ import annotations

import threading
import time


def _sh(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


class GuestAgentStandIn(threading.Thread):
    def __init__(self, vm, find_user_and_key, timeout: float = 300, on_ready=lambda: None):
        super().__init__(daemon=True)
        self.vm, self.find, self.timeout, self.on_ready = vm, find_user_and_key, timeout, on_ready
        self.user = self.key = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self):
        try:
            end = time.monotonic() + self.timeout
            while time.monotonic() < end and not self.done.is_set():
                found = self.find()
                if found:
                    self.user, self.key = found
                    u = _sh(self.user)
                    script = (f"id -u {u} >/dev/null 2>&1 || useradd -m -s /bin/bash {u}; "
                              f"install -d -m 700 -o {u} -g {u} /home/{self.user}/.ssh && "
                              f"printf '%s\\n' {_sh(self.key)} > /home/{self.user}/.ssh/authorized_keys && "
                              f"chown {u}:{u} /home/{self.user}/.ssh/authorized_keys && "
                              f"chmod 600 /home/{self.user}/.ssh/authorized_keys && "
                              f"printf '%s ALL=(ALL) NOPASSWD:ALL\\n' {u} > /etc/sudoers.d/90-{self.user} && "
                              f"chmod 440 /etc/sudoers.d/90-{self.user}")
                    rc, out, err = self.vm.run(script)
                    assert rc == 0, err
                    self.on_ready()  # the guest's sshd answers once its agent has put the key in place
                    return
                time.sleep(0.3)
            raise TimeoutError("the emulator never held the VM with its SSH key")
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.done.set()
