"""`machine bundle build|verify`: offline engine bundles for --engine-bundle."""
from __future__ import annotations

import click

from .common import get_api


@click.group()
def bundle():
    """Offline Docker Engine bundles (packages installed over SSH, no internet on the host)."""


@bundle.command()
@click.option("--distro", required=True, help="Target distribution as ID-VERSION, e.g. debian-12, ubuntu-22.04")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Folder to write the packages and manifest.json into (new or empty)")
@click.option("--package", "packages", multiple=True,
              help="Package to bundle (repeatable; default: docker.io apparmor)")
@click.option("--dpkg-status", type=click.Path(exists=True, dir_okay=False),
              help="The target's /var/lib/dpkg/status: bundle only what that host lacks")
@click.option("--from-machine", metavar="NAME",
              help="Read the dpkg status from machine NAME over SSH (smallest bundle for it)")
@click.option("--apt-sources", type=click.Path(exists=True),
              help="apt sources (file or folder) for the target distribution when this host runs another")
@click.pass_context
def build(ctx, distro, output, packages, dpkg_status, from_machine, apt_sources):
    """Download the engine's packages and their dependencies into a bundle folder."""
    import tempfile

    from .. import bundle as bundle_mod

    if dpkg_status and from_machine:
        raise click.UsageError("--dpkg-status and --from-machine are alternatives; pass one")
    with tempfile.TemporaryDirectory(prefix="machine-status-") as tmp:
        if from_machine:
            dpkg_status = f"{tmp}/status"
            get_api(ctx).fetch_file(from_machine, "/var/lib/dpkg/status", dpkg_status)
        info = bundle_mod.build(distro, output, packages=list(packages) or None, dpkg_status=dpkg_status,
                                apt_sources=apt_sources)
    click.echo(f"{info.path}: {len(info.files)} packages, {info.size / 1e6:.1f} MB for {info.distro} "
               f"({' '.join(info.packages)}) in {info.seconds:g}s", err=True)
    click.echo(str(info.path))


@bundle.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False))
def verify(path):
    """Check a bundle folder's files against its manifest."""
    from .. import bundle as bundle_mod
    from ..errors import MachineError

    manifest = bundle_mod.read_manifest(path)
    if not manifest:
        raise MachineError(f"{path} has no readable manifest.json", "it can still be used; nothing to verify")
    bad = bundle_mod.verify(path)
    if bad:
        raise MachineError(f"{len(bad)} file(s) in {path} are missing or damaged: {', '.join(bad)}",
                           "build the bundle again")
    click.echo(f"{path}: {len(manifest.get('files', {}))} packages for {manifest.get('distro')} intact")
