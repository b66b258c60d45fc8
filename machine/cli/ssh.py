"""`machine ssh NAME [-- CMD...]` and `machine scp [-r] SRC DST` (NAME:path on the machine side)."""
from __future__ import annotations

import click

from .common import default_name, get_api


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def ssh(ctx, name, command):
    """Log into a machine with SSH, or run COMMAND on it: machine ssh NAME [SSH-OPTIONS] [--] [COMMAND].

    The host key pinned at create time is checked; a changed key is refused.
    Like ssh, the words of COMMAND are joined with spaces and run by the remote shell.
    SSH options before the command go to OpenSSH (as docker-machine passes them); with
    --native-ssh, or without OpenSSH, the built-in client takes the harmless ones (-C -q -t -T -v).
    """
    import os
    import shutil

    from ..errors import UsageError
    from ..transfer import machine_connection

    options, command = split_ssh_options(list(command))
    api = get_api(ctx)
    native = ctx.find_root().obj.get("native_ssh") or shutil.which("ssh") is None
    if options and not native:
        argv = api.openssh_argv(default_name(name), options, command)
        os.execv(argv[0], argv)  # the user's own ssh, with our pinned known_hosts
    unsupported = [o for o in options if o not in NATIVE_HARMLESS]
    if unsupported:
        raise UsageError(f"the built-in SSH client does not support {' '.join(unsupported)}",
                         "install OpenSSH (openssh-client) and drop --native-ssh")
    conn = machine_connection(api, default_name(name))
    try:
        code = conn.interactive(" ".join(command) if command else None)
    finally:
        conn.close()
    ctx.exit(code if code >= 0 else 255)


#: OpenSSH options that take a value
SSH_OPTS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")
#: options the built-in client can accept (they change nothing it does)
NATIVE_HARMLESS = {"-C", "-q", "-t", "-T", "-v", "-4", "-A", "-a", "-x", "-X", "-n"}


def split_ssh_options(words: list[str]) -> tuple[list[str], list[str]]:
    """[-C, -o, X=Y, --, echo, hi] -> ([-C, -o, X=Y], [echo, hi]): options end at the first word
    that is not one, or at `--`."""
    options: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--":
            return options, words[i + 1:]
        if not w.startswith("-") or w == "-":
            break
        options.append(w)
        if len(w) == 2 and w[1] in SSH_OPTS_WITH_VALUE and i + 1 < len(words):
            options.append(words[i + 1])
            i += 1
        i += 1
    return options, words[i:]


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
