"""Verbs that read or drop records: active, config, inspect, ip, rm, status, url, use, version."""
from __future__ import annotations

import json

import click

from .common import default_name, for_each, pass_api, step_reporter


@click.command()
@click.option("-t", "--timeout", type=int, default=10,
              help="Accepted for docker-machine compatibility: active answers from the store, asking no host")
@pass_api
def active(api, timeout):
    """Print the active machine (the one DOCKER_HOST or the docker context points at)."""
    from ..errors import MachineError

    name = api.active()
    if not name:
        raise MachineError("no active host found", "run: eval $(machine env NAME) or machine use NAME")
    click.echo(name)


@click.command()
@click.option("--no-check", is_flag=True, help="Answer from the store without the TLS handshake")
@click.argument("name", required=False)
@pass_api
def config(api, no_check, name):
    """Print the docker CLI flags for a machine, after checking its engine answers over TLS (as docker-machine)."""
    click.echo(api.config_flags(default_name(name), check=not no_check), nl=False)


@click.command()
@click.option("-f", "--format", "fmt", default=None, help="Go template, e.g. '{{.Driver.IPAddress}}'")
@click.argument("name", required=False)
@pass_api
def inspect(api, fmt, name):
    """Print a machine's record as JSON (or through a template)."""
    data = api.inspect(default_name(name))
    if fmt:
        from ..gotemplate import render

        click.echo(render(fmt, data))
    else:
        click.echo(json.dumps(data, indent=4))


@click.command()
@click.argument("names", nargs=-1)
@pass_api
def ip(api, names):
    """Print the IP address of machines."""
    for_each(names or ("default",), lambda n: click.echo(api.ip(n)), what="getting the IP of")


@click.command()
@click.argument("name", required=False)
@pass_api
def url(api, name):
    """Print the engine URL of a machine."""
    click.echo(api.url(default_name(name)))


@click.command()
@click.argument("name", required=False)
@pass_api
def status(api, name):
    """Print the state of a machine (Running, Stopped, …)."""
    click.echo(str(api.status(default_name(name))))


@click.command()
@click.argument("name")
@pass_api
def use(api, name):
    """Make the machine's docker context the current one (docker --context is then implied)."""
    api.use(name)
    click.echo(f"Current docker context is now {name!r}", err=True)


@click.command()
@click.option("-f", "--force", is_flag=True,
              help="Drop the local record even if removing the host fails; implies -y (as in docker-machine)")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.argument("names", nargs=-1, required=True)
@pass_api
def rm(api, force, yes, names):
    """Remove machines: the host (VM, cloud server …) and its local record."""
    if not (yes or force):
        click.echo(f"About to remove {', '.join(names)}")
        click.echo("WARNING: This action will delete both local reference and remote instance.")
        if not click.confirm("Are you sure?", default=False):
            return
    def remove(n):
        api.rm(n, force=force, on_step=step_reporter(n))
        click.echo(f"Successfully removed {n}")
    for_each(names, remove, what="removing")


@click.command()
@click.argument("name", required=False)
@pass_api
def version(api, name):
    """Print machine's version, or the engine version of a machine."""
    from .. import __version__

    if not name:
        click.echo(f"machine version {__version__}")
        return
    click.echo(api.engine_version(name))


@click.command(name="update-labels")
@click.option("--label", "labels", multiple=True, required=True, help="KEY=VALUE (repeatable)")
@click.argument("name")
@pass_api
def update_labels(api, labels, name):
    """Record labels on a machine (GitLab Runner's autoscaler calls this)."""
    from ..errors import UsageError

    parsed = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --label {item!r}", "write it as KEY=VALUE")
        parsed[key] = value
    api.update_labels(name, parsed)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("name", required=False)
@pass_api
def audit(api, fmt, name):
    """Check a machine against the container-security checklist (exit 1 when a check fails)."""
    from ..audit import FAIL, worst

    findings = api.audit(default_name(name))
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        width = max(len(f.check) for f in findings)
        click.echo(f"{'CHECK':<{width}}  RESULT  DETAIL")
        for f in findings:
            click.echo(f"{f.check:<{width}}  {f.result.upper():<6}  {f.detail}")
    if worst(findings) == FAIL:
        raise click.exceptions.Exit(1)
