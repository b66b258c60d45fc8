"""Driver `none`: record an engine that already exists, reached at --url."""
from __future__ import annotations

from urllib.parse import urlparse

from ...driver import Capabilities, Driver, Option
from ...errors import UsageError
from ...model import State


class NoneDriver(Driver):
    name = "none"
    description = "an existing Docker engine reached at --url; nothing is created"
    options = (
        Option("url", help="URL of the engine, e.g. tcp://10.0.0.5:2376", key="URL", envvar="NONE_URL",
               aliases=("--url",)),
    )
    capabilities = Capabilities(start=False, stop=False, restart=False, kill=False, ssh=False, provision=False)

    def set_options(self, values):
        # docker-machine's `none` driver takes a bare --url (declared as an alias).
        super().set_options(values)
        url = self.config.get("URL")
        if url:
            parsed = urlparse(url)
            self.config["IPAddress"] = parsed.hostname or ""

    def pre_create_check(self) -> None:
        url = self.config.get("URL")
        if not url:
            raise UsageError("driver none needs the engine's address", "pass --url tcp://HOST:2376")
        parsed = urlparse(url)
        if parsed.scheme not in ("tcp", "unix", "ssh") or not (parsed.hostname or parsed.path):
            raise UsageError(f"invalid --url {url!r}", "use the form tcp://HOST:PORT")

    def create(self) -> None:
        """Nothing to create: the engine exists already."""

    def remove(self) -> None:
        """Nothing to delete: the engine is not ours."""

    def state(self) -> State:
        # docker-machine reports `none` machines as Running; ls probes the engine itself.
        return State.RUNNING

    def engine_endpoint(self, engine_port):
        parsed = urlparse(self.config.get("URL") or "")
        return parsed.hostname or "", parsed.port or engine_port
