"""Entry point: the `machine` click group. Commands load lazily so start-up stays light."""
from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__

# verb -> "module:attribute"; a module is imported only when its verb runs.
COMMANDS = {
    "active": "machine.cli.basic:active",
    "audit": "machine.cli.basic:audit",
    "config": "machine.cli.basic:config",
    "cluster": "machine.cli.cluster:cluster",
    "completion": "machine.cli.completion:completion",
    "create": "machine.cli.create:create",
    "env": "machine.cli.env:env",
    "bundle": "machine.cli.bundle:bundle",
    "inspect": "machine.cli.basic:inspect",
    "ip": "machine.cli.basic:ip",
    "kill": "machine.cli.lifecycle:kill",
    "ls": "machine.cli.ls:ls",
    "provision": "machine.cli.lifecycle:provision",
    "regenerate-certs": "machine.cli.lifecycle:regenerate_certs",
    "restart": "machine.cli.lifecycle:restart",
    "rm": "machine.cli.basic:rm",
    "scp": "machine.cli.ssh:scp",
    "ssh": "machine.cli.ssh:ssh",
    "ssh-keys": "machine.cli.ssh:ssh_keys",
    "start": "machine.cli.lifecycle:start",
    "status": "machine.cli.basic:status",
    "stop": "machine.cli.lifecycle:stop",
    "swarm": "machine.cli.swarm:swarm",
    "update-labels": "machine.cli.basic:update_labels",
    "upgrade": "machine.cli.lifecycle:upgrade",
    "url": "machine.cli.basic:url",
    "use": "machine.cli.basic:use",
    "version": "machine.cli.basic:version",
}


def _commands() -> dict[str, str]:
    """Built-in verbs plus those drivers contribute through the "machine.commands" entry point."""
    from ..driver import driver_commands

    return {**driver_commands(), **COMMANDS}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_commands())

    def get_command(self, ctx, name):
        target = COMMANDS.get(name) or _commands().get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:  # verb not built in this install
                return None
            raise
        return getattr(module, attr)

    def resolve_command(self, ctx, args):
        cmd_name = click.utils.make_str(args[0])
        if self.get_command(ctx, cmd_name) is None and not cmd_name.startswith("-"):
            raise click.UsageError(f"unknown command {cmd_name!r} (see: machine --help)")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--storage-path", envvar="MACHINE_STORAGE_PATH", type=click.Path(),
              default=None, help="Machine store [env MACHINE_STORAGE_PATH, default ~/.docker/machine]")
@click.option("-D", "--debug", is_flag=True, envvar="MACHINE_DEBUG", help="Show tracebacks and debug logs")
@click.option("--tls-ca-cert", envvar="MACHINE_TLS_CA_CERT", default=None, help="CA to verify remotes against "
              "(docker-machine's global flag: the default of create's --tls-ca-cert)")
@click.option("--tls-ca-key", envvar="MACHINE_TLS_CA_KEY", default=None, help="Private key of that CA")
@click.option("--tls-client-cert", envvar="MACHINE_TLS_CLIENT_CERT", default=None, help="Client cert to use for TLS")
@click.option("--tls-client-key", envvar="MACHINE_TLS_CLIENT_KEY", default=None, help="Private key of that cert")
@click.option("--native-ssh", is_flag=True, envvar="MACHINE_NATIVE_SSH",
              help="Use the built-in SSH client for `machine ssh` even where OpenSSH is installed")
@click.option("--github-api-token", envvar="MACHINE_GITHUB_API_TOKEN", default=None, hidden=True,
              help="Accepted for docker-machine compatibility and ignored (no boot2docker downloads)")
@click.option("--bugsnag-api-token", envvar="MACHINE_BUGSNAG_API_TOKEN", default=None, hidden=True,
              help="Accepted for docker-machine compatibility and ignored (nothing is ever reported)")
@click.version_option(__version__, "-v", "--version", prog_name="machine",
                      message="%(prog)s version %(version)s")
@click.pass_context
def cli(ctx, storage_path, debug, tls_ca_cert, tls_ca_key, tls_client_cert, tls_client_key, native_ssh,
        github_api_token, bugsnag_api_token):
    """Create Docker hosts and point the docker CLI at them."""
    ctx.ensure_object(dict)
    ctx.obj["storage_path"] = storage_path
    ctx.obj["debug"] = debug
    ctx.obj["native_ssh"] = native_ssh
    ctx.obj["tls"] = {"ca_cert": tls_ca_cert, "ca_key": tls_ca_key, "client_cert": tls_client_cert,
                      "client_key": tls_client_key}
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("paramiko").setLevel(logging.INFO)  # not every packet


def _wants_debug(argv) -> bool:
    return any(a in ("-D", "--debug") for a in argv) or bool(os.environ.get("MACHINE_DEBUG"))


def main(argv=None) -> int:
    """Run the CLI: every failure becomes one line on stderr and a non-zero exit code."""
    if argv is None:  # the program's own command line: read-only verbs answer on the light path
        from ..fast import run as run_fast

        code = run_fast()
        if code is not None:
            return code
    from ..errors import MachineError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _wants_debug(argv)
    try:
        rv = cli.main(args=argv, prog_name="machine", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("Interrupted.", err=True)
            return 130
        click.echo("Aborted.", err=True)
        return 1
    except (click.ClickException, MachineError) as e:
        from .common import print_error

        print_error(e, debug=debug)
        return 1  # docker-machine exits 1 on every error, usage errors included
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:  # read-only store, full disk, a path that is a file: say which and why
        if debug:
            raise
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        click.echo(f"Error: {e.strerror or e}{where}: check the store's permissions, free space and "
                   f"path (-s/--storage-path)", err=True)
        return 1
    except Exception as e:  # a bug: still one line unless --debug
        if debug:
            raise
        click.echo(f"Error: unexpected {type(e).__name__}: {e} (run with --debug for details)", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
