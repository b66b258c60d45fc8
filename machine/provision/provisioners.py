"""One provisioner per OS family: how the engine gets installed there.

Everything after the install (TLS files, daemon.json, the systemd drop-in, start,
verify) is the same on every systemd distribution and lives in core.py.
"""
from __future__ import annotations

import shlex
from typing import ClassVar

from ..errors import MachineError
from .facts import SUPPORTED, Facts
from .render import bootstrap_script

# Exit codes of bootstrap/*.sh (see common.sh)
RETRYABLE = {10, 11, 20}
EXIT_MEANING = {
    10: "download failed",
    11: "package manager stayed busy",
    12: "no download tool (curl or wget) on the host",
    20: "package install failed",
    21: "bundle install failed",
    30: "the install exited 0 but left no dockerd on the host",
    31: "no install method for this OS",
    40: "docker.service did not start",
}


class Provisioner:
    family: ClassVar[str] = ""
    package_ext: ClassVar[str] = ""         # ".deb" / ".rpm": what a bundle must hold
    package_names: ClassVar[str] = ""       # for messages

    def __init__(self, facts: Facts):
        self.facts = facts

    @property
    def os_id(self) -> str:
        return self.facts.os.id

    def install_script(self, strategy: str, *, install_url: str = "") -> tuple[str, list[str]]:
        """(script, args) for the script/package strategies."""
        if strategy == "script":
            return bootstrap_script("install-script.sh"), [install_url]
        if strategy == "package":
            return bootstrap_script("install-package.sh"), [self.family, self.os_id]
        raise MachineError(f"unknown engine install strategy {strategy!r}",
                           "use one of: script, package, bundle, none")

    def bundle_script(self, remote_tar: str, digest: str, packages: list[str] = ()) -> tuple[str, list[str]]:
        return bootstrap_script("install-bundle.sh"), [remote_tar, digest, self.family, *packages]

    def check_bundle(self, names: list[str]) -> None:
        """Refuse a bundle of the wrong package type before uploading 60 MB of it."""
        pkgs = [n for n in names if n.endswith((".deb", ".rpm"))]
        if not pkgs:
            raise MachineError("the engine bundle holds no .deb or .rpm packages",
                               "build one with: machine bundle build --distro DISTRO -o DIR")
        if not any(n.endswith(self.package_ext) for n in pkgs):
            raise MachineError(
                f"the engine bundle holds no {self.package_ext} packages, but {self.facts.os.name} "
                f"installs {self.package_ext} files",
                f"build a bundle for this host: machine bundle build --distro {self.facts.os.slug} -o DIR")


class DebianProvisioner(Provisioner):
    family = "debian"
    package_ext = ".deb"
    package_names = "docker.io"


class RedHatProvisioner(Provisioner):
    family = "redhat"
    package_ext = ".rpm"

    @property
    def package_names(self) -> str:  # type: ignore[override]
        return {"fedora": "moby-engine", "amzn": "docker"}.get(self.os_id, "docker-ce (Docker's repository)")


class SuseProvisioner(Provisioner):
    family = "suse"
    package_ext = ".rpm"
    package_names = "docker"


class GenericSystemdProvisioner(Provisioner):
    """An OS we do not know, with an engine already installed: configure only."""

    family = "generic"

    def install_script(self, strategy: str, *, install_url: str = ""):
        if strategy == "script":  # get.docker.com knows more distributions than we do
            return bootstrap_script("install-script.sh"), [install_url]
        raise MachineError(f"cannot install the engine on {self.facts.os.name}: unsupported OS",
                           f"supported: {SUPPORTED}; or install Docker yourself and use --engine-install=none")

    def bundle_script(self, remote_tar: str, digest: str, packages: list[str] = ()):
        raise MachineError(f"cannot install an engine bundle on {self.facts.os.name}: unsupported OS",
                           f"supported: {SUPPORTED}")


PROVISIONERS = {p.family: p for p in (DebianProvisioner, RedHatProvisioner, SuseProvisioner)}


def provisioner_for(facts: Facts) -> Provisioner:
    cls = PROVISIONERS.get(facts.family or "")
    if cls is not None:
        return cls(facts)
    return GenericSystemdProvisioner(facts)


def describe_exit(code: int) -> str:
    return EXIT_MEANING.get(code, f"exit status {code}")
