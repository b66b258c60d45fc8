"""Driver `generic`: adopt an existing server reachable over SSH (docker-machine's flags)."""
from __future__ import annotations

import os

from ...driver import Capabilities, Driver, DriverConfig, setting
from ...engineapi import port_open
from ...errors import UsageError
from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write
from ...layout import DEFAULT_ENGINE_PORT
from ...model import State

DEFAULT_KEY = "~/.ssh/id_rsa"


class GenericConfig(DriverConfig):
    ip_address: str = setting("IPAddress", "", flag="ip-address", env="GENERIC_IP_ADDRESS",
                              help="IP address or host name of the server")
    ssh_user: str = setting("SSHUser", "root", flag="ssh-user", env="GENERIC_SSH_USER", help="SSH user")
    ssh_port: int = setting("SSHPort", 22, flag="ssh-port", env="GENERIC_SSH_PORT", min=1, max=65535,
                            help="SSH port")
    ssh_key: str = setting("SSHKey", "", flag="ssh-key", env="GENERIC_SSH_KEY",
                           help=f"SSH private key (default {DEFAULT_KEY} when it exists)")
    engine_port: int = setting("EnginePort", DEFAULT_ENGINE_PORT, flag="engine-port", env="GENERIC_ENGINE_PORT",
                               min=1, max=65535, help="port dockerd listens on and clients connect to")

    def validate(self, driver_name: str) -> None:
        if not self.ip_address:
            raise UsageError("driver generic needs the server's address", "pass --generic-ip-address")
        if any(c.isspace() or c in "/@" for c in self.ip_address):
            raise UsageError(f"invalid --generic-ip-address {self.ip_address!r}", "give a host name or IP address")
        if not self.ssh_user or any(c.isspace() or c in "@:/" for c in self.ssh_user):
            raise UsageError(f"invalid --generic-ssh-user {self.ssh_user!r}", "give a login name")

    def source_key(self) -> str | None:
        if self.ssh_key:
            return os.path.expanduser(self.ssh_key)
        default = os.path.expanduser(DEFAULT_KEY)
        return default if os.path.isfile(default) else None


class GenericDriver(Driver):
    name = "generic"
    description = "an existing server reached over SSH; Machine installs and secures its engine"
    Config = GenericConfig
    # The server is not ours: we neither power it nor delete it.
    capabilities = Capabilities(start=False, stop=False, restart=False, kill=False)
    config: GenericConfig

    def pre_create_check(self) -> None:
        key = self.config.source_key()
        if key and not os.path.isfile(key):
            raise UsageError(f"SSH key {key} not found", "pass --generic-ssh-key PATH")

    def create(self) -> None:
        # docker-machine copies the key into the machine folder so the record is self-contained.
        src = self.config.source_key()
        if src:
            dst = self.machine_dir / "id_rsa"
            with open(src, "rb") as f:
                atomic_write(dst, f.read(), mode=PRIVATE_FILE)
            if os.path.exists(src + ".pub"):
                with open(src + ".pub", "rb") as f:
                    atomic_write(str(dst) + ".pub", f.read(), mode=PUBLIC_FILE)
            self.config.ssh_key_path = str(dst)

    def remove(self) -> None:
        """The server stays; only our record goes."""

    def state(self) -> State:
        reachable = port_open(self.config.ip_address, int(self.config.ssh_port or 22), timeout=2)
        return State.RUNNING if reachable else State.STOPPED

    def default_engine_port(self):
        # docker-machine: --generic-engine-port is where dockerd listens and clients connect.
        return int(self.config.engine_port or 0) or None

    def engine_endpoint(self, engine_port):
        return self.ip(), int(self.config.engine_port or engine_port)
