"""Driver `none`: record an engine that already exists, reached at --url."""
from __future__ import annotations

from urllib.parse import urlparse

from ...driver import Capabilities, Driver, DriverConfig, setting
from ...errors import UsageError
from ...model import State

URL_SCHEMES = ("tcp", "unix", "ssh")


class NoneConfig(DriverConfig):
    # docker-machine's `none` driver takes a bare --url: kept as an alias of --none-url.
    url: str = setting("URL", "", flag="url", alias="--url", env="NONE_URL",
                       help="URL of the engine, e.g. tcp://10.0.0.5:2376")

    def validate(self, driver_name: str) -> None:
        if not self.url:
            raise UsageError("driver none needs the engine's address", "pass --url tcp://HOST:2376")
        parsed = urlparse(self.url)
        try:
            parsed.port
        except ValueError:
            raise UsageError(f"invalid --url {self.url!r}: bad port", "use the form tcp://HOST:PORT") from None
        if parsed.scheme not in URL_SCHEMES or not (parsed.hostname or parsed.path) \
                or any(c.isspace() for c in self.url):
            raise UsageError(f"invalid --url {self.url!r}", "use the form tcp://HOST:PORT")
        self.ip_address = parsed.hostname or ""


class NoneDriver(Driver):
    name = "none"
    description = "an existing Docker engine reached at --url; nothing is created"
    Config = NoneConfig
    capabilities = Capabilities(start=False, stop=False, restart=False, kill=False, ssh=False, provision=False,
                                local_state=True)
    config: NoneConfig

    def pre_create_check(self) -> None:
        """Nothing to check: --url was validated with the options."""

    def create(self) -> None:
        """Nothing to create: the engine exists already."""

    def remove(self) -> None:
        """Nothing to delete: the engine is not ours."""

    def state(self) -> State:
        # docker-machine reports `none` machines as Running; ls probes the engine itself.
        return State.RUNNING

    def engine_endpoint(self, engine_port):
        parsed = urlparse(self.config.url)
        return parsed.hostname or "", parsed.port or engine_port

    def engine_url(self, engine_port: int) -> str:
        # The URL as the user gave it (docker-machine's behaviour), whatever its scheme.
        return self.config.url or super().engine_url(engine_port)
