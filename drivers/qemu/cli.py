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


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format")
@click.argument("name", required=False)
@pass_api
def ports(api, fmt, name):
    """List container ports a qemu machine forwards to 127.0.0.1 (added and removed as containers come and go)."""
    import json

    from ...cli.common import default_name
    from ...errors import UsageError

    name = default_name(name)
    host = api.load(name)
    driver = api.driver_for(host, persist=False)
    if not hasattr(driver, "published_ports"):
        raise UsageError(f"machine {name} uses driver {host.driver_name}, which does not forward published ports",
                         "published ports are reachable at its address: machine ip " + name)
    rows = driver.published_ports()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        line = "{:<6} {:<22} {:<7} {}"
        click.echo(line.format("PROTO", "HOST", "GUEST", "CONTAINERS"))
        for r in rows:
            click.echo(line.format(r["proto"], f"127.0.0.1:{r['host_port']}", r["guest_port"],
                                   ",".join(r.get("containers", []))))
    if not driver.agent_running():
        why = ("--qemu-forward-ports is off" if driver.config.forward_ports != "on" else
               "the machine is not running" if not driver.pid() else "the port agent is not running "
               f"(machine start {name} brings it back)")
        click.echo(f"no ports are forwarded: {why}", err=True)
