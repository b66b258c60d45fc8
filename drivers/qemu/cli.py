"""`machine image`: build and list the offline Debian images the qemu driver boots.

Contributed by the qemu driver through the "machine.commands" entry point."""
from __future__ import annotations

import click

from ...cli.common import pass_api


@click.group()
def image():
    """Build and list the cached Debian images for the qemu driver."""


@image.command()
@click.option("--engine/--no-engine", default=True, show_default=True,
              help="Bake Docker Engine into the image (the default image of `create -d qemu`)")
@click.option("--force", is_flag=True, help="Rebuild even if the cached image is current")
@pass_api
def build(api, engine, force):
    """Build the image offline with mmdebstrap (cached by recipe hash)."""
    from . import image as images

    cached = images.cached_image(api.cache_dir, engine)
    if cached and not force:
        click.echo(f"up to date: {cached.dir}", err=True)
    paths = images.build_image(api.cache_dir, engine=engine, force=force,
                               log=lambda msg: click.echo(msg, err=True))
    click.echo(str(paths.dir))


@image.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image folders")
@pass_api
def ls(api, quiet):
    """List cached images; CURRENT marks the ones this version builds."""
    from . import image as images

    rows = images.list_images(api.cache_dir)
    if quiet:
        for r in rows:
            click.echo(r["path"])
        return
    fmt = "{:<18} {:<8} {:<10} {:<8} {:>9}  {:<20} {}"
    click.echo(fmt.format("HASH", "ENGINE", "SUITE", "CURRENT", "SIZE", "BUILT", "PATH"))
    for r in rows:
        click.echo(fmt.format(r["hash"], "yes" if r["engine"] else "no", r["suite"] or "",
                              "*" if r["current"] else "", f"{r['size'] / 2**20:.0f} MiB",
                              r["built"], r["path"]))
