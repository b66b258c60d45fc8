"""Driver `generic`: adopt an existing server reachable over SSH (docker-machine's flags)."""
from __future__ import annotations

import os
import shutil

from ...driver import Capabilities, Driver, Option
from ...engineapi import port_open
from ...errors import UsageError
from ...fsutil import PRIVATE_FILE, atomic_write
from ...model import State


class GenericDriver(Driver):
    name = "generic"
    description = "an existing server reached over SSH; Machine installs and secures its engine"
    options = (
        Option("ip-address", help="IP address or host name of the server", key="IPAddress",
               envvar="GENERIC_IP_ADDRESS"),
        Option("ssh-user", default="root", help="SSH user", key="SSHUser", envvar="GENERIC_SSH_USER"),
        Option("ssh-port", type=int, default=22, help="SSH port", key="SSHPort", envvar="GENERIC_SSH_PORT"),
        Option("ssh-key", default=None, help="SSH private key (default ~/.ssh/id_rsa)", key="SSHKey",
               envvar="GENERIC_SSH_KEY"),
        Option("engine-port", type=int, default=2376, help="Engine port", key="EnginePort",
               envvar="GENERIC_ENGINE_PORT"),
    )
    # The server is not ours: we neither power it nor delete it.
    capabilities = Capabilities(start=False, stop=False, restart=False, kill=False)

    def pre_create_check(self) -> None:
        if not self.config.get("IPAddress"):
            raise UsageError("driver generic needs the server's address", "pass --generic-ip-address")
        key = self._source_key()
        if key and not os.path.isfile(key):
            raise UsageError(f"SSH key {key} not found", "pass --generic-ssh-key PATH")

    def _source_key(self) -> str | None:
        key = self.config.get("SSHKey")
        if key:
            return os.path.expanduser(key)
        default = os.path.expanduser("~/.ssh/id_rsa")
        return default if os.path.isfile(default) else None

    def create(self) -> None:
        # docker-machine copies the key into the machine folder so the record is self-contained.
        src = self._source_key()
        if src:
            dst = os.path.join(self.machine_dir, "id_rsa")
            with open(src, "rb") as f:
                atomic_write(dst, f.read(), mode=PRIVATE_FILE)
            if os.path.exists(src + ".pub"):
                shutil.copyfile(src + ".pub", dst + ".pub")
            self.config["SSHKeyPath"] = dst

    def remove(self) -> None:
        """The server stays; only our record goes."""

    def state(self) -> State:
        host = self.config.get("IPAddress") or ""
        return State.RUNNING if port_open(host, int(self.config.get("SSHPort") or 22), timeout=2) else State.STOPPED

    def default_engine_port(self):
        # docker-machine: --generic-engine-port is where dockerd listens and clients connect.
        return int(self.config.get("EnginePort") or 0) or None

    def engine_endpoint(self, engine_port):
        return self.ip(), int(self.config.get("EnginePort") or engine_port)

    def addresses(self) -> list[str]:
        return [a for a in {self.ip(), self.config.get("SSHHostAddress") or ""} if a]
