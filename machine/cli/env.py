"""`machine env`: shell commands that point the docker CLI at a machine."""
from __future__ import annotations

import sys

import click

from .common import default_name, pass_api


@click.command()
@click.option("--shell", default=None, help="bash, sh, zsh, fish, powershell, cmd, tcsh or emacs (detected)")
@click.option("-u", "--unset", is_flag=True, help="Print commands that unset the variables")
@click.option("--no-proxy", is_flag=True, help="Add the machine's IP to NO_PROXY")
@click.option("--swarm", is_flag=True, hidden=True, help="Accepted for docker-machine compatibility")
@click.option("--check", is_flag=True, help="Verify the engine and its certificate first (network)")
@click.argument("name", required=False)
@pass_api
def env(api, shell, unset, no_proxy, swarm, check, name):
    """Print the environment for a machine (from the store; no network unless --check)."""
    from .. import clientconfig
    from ..errors import UsageError

    if unset and name:  # docker-machine's rule: -u unsets, it names no machine
        raise UsageError("Expected no machine name when the -u flag is present", "run: machine env -u")
    shell = shell or clientconfig.detect_shell()
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "machine"
    args = [a for a in sys.argv[1:]] if sys.argv[1:] else ["env", default_name(name)]
    out = api.env(default_name(name), shell=shell, unset=unset, no_proxy=no_proxy, check=check,
                  command_line=[_prog_name(prog)] + args)
    click.echo(out, nl=False)


def _prog_name(prog: str) -> str:
    import os

    base = os.path.basename(prog)
    # Console scripts get their full path as argv[0] and `python -m machine` gets
    # __main__.py; show the command users type, as docker-machine's hint did.
    return "machine" if base in ("__main__.py", "-c", "machine") else prog
