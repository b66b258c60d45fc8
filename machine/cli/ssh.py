"""`machine ssh NAME [-- CMD...]` and `machine scp [-r] SRC DST` (NAME:path on the machine side)."""
from __future__ import annotations

import click

from .common import default_name, get_api


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def ssh(ctx, name, command):
    """Log into a machine with SSH, or run COMMAND on it.

    The host key pinned at create time is checked; a changed key is refused.
    Like ssh, the words of COMMAND are joined with spaces and run by the remote shell.
    """
    from ..transfer import machine_connection

    if command and command[0] == "--":
        command = command[1:]
    conn = machine_connection(get_api(ctx), default_name(name))
    try:
        code = conn.interactive(" ".join(command) if command else None)
    finally:
        conn.close()
    ctx.exit(code if code >= 0 else 255)


@click.command()
@click.option("-r", "--recursive", is_flag=True, help="Copy directories recursively")
@click.option("-q", "--quiet", is_flag=True, help="Do not list copied files")
@click.argument("src")
@click.argument("dst")
@click.pass_context
def scp(ctx, recursive, quiet, src, dst):
    """Copy files between the local host and a machine: machine scp [-r] [NAME:]SRC [NAME:]DST."""
    from ..transfer import copy

    def shown(path: str, size: int) -> None:
        if not quiet:
            click.echo(f"{path} ({size} bytes)", err=True)

    copy(get_api(ctx), src, dst, recursive=recursive, on_file=shown)


@click.group("ssh-keys")
def ssh_keys():
    """Host keys pinned for machines (checked on every SSH connection)."""


@ssh_keys.command("show")
@click.argument("name", required=False)
@click.pass_context
def ssh_keys_show(ctx, name):
    """Print the fingerprints of the host key pinned for a machine."""
    from ..transfer import pinned_keys

    keys = pinned_keys(get_api(ctx), default_name(name))
    if not keys:
        click.echo("no host key pinned yet (the next SSH connection pins one)", err=True)
    for k in keys:
        click.echo(k)


@ssh_keys.command("reset")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def ssh_keys_reset(ctx, names):
    """Forget a machine's pinned host key, after re-creating the host on purpose.

    The next `machine ssh` or `machine provision` pins the key the host presents then.
    """
    from ..transfer import forget_host_key

    api = get_api(ctx)
    for n in names:
        if forget_host_key(api, n):
            click.echo(f"{n}: pinned host key forgotten; the next connection pins the new one", err=True)
        else:
            click.echo(f"{n}: no host key was pinned", err=True)
