"""`machine ls`: every machine with its state, checked in parallel with a per-host timeout."""
from __future__ import annotations

import json

import click

from .common import pass_api

DEFAULT_FORMAT = ("table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.Swarm}}"
                  "\t{{.DockerVersion}}\t{{.CertExpiry}}\t{{.Error}}")
HEADERS = {"Name": "NAME", "Active": "ACTIVE", "ActiveHost": "ACTIVE", "DriverName": "DRIVER", "State": "STATE",
           "URL": "URL", "Swarm": "SWARM", "DockerVersion": "DOCKER", "Error": "ERRORS",
           "CertExpiry": "CERTS EXPIRE", "ResponseTime": "RESPONSE", "Ports": "PORTS"}
# Shown only when a listed machine forwards published ports to the host (local VMs), so the table
# of every other store stays docker-machine's.
PORTS_COLUMN = "\t{{.Ports}}"


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Only names")
@click.option("--filter", "filters", multiple=True, help="driver=, state=, name=REGEX, label=K=V, swarm=")
@click.option("-t", "--timeout", type=float, default=10, show_default=True, help="Seconds per host")
@click.option("-f", "--format", "fmt", default=None, help="Go template ({{.Name}} …) or 'json'")
@pass_api
def ls(api, quiet, filters, timeout, fmt):
    """List machines."""
    from ..api import parse_filters
    from ..gotemplate import render_rows

    parsed = parse_filters(filters)
    if fmt and fmt != "json":
        from ..api import HostStatus

        render_rows(fmt, [HostStatus(name="check").as_template_data()])  # a bad template fails before any probing
    # -q without a state filter needs no probing at all: answer from the store.
    probe = not quiet or "state" in parsed
    rows = api.ls(filters=parsed, timeout=timeout, probe=probe)
    if quiet:
        for r in rows:
            click.echo(r.name)
        return
    if fmt == "json":
        click.echo(json.dumps([r.as_template_data() for r in rows], indent=2))
        return
    if fmt is None:
        fmt = DEFAULT_FORMAT + (PORTS_COLUMN if any(r.ports for r in rows) else "")
    click.echo(render_rows(fmt, [r.as_template_data() for r in rows], HEADERS), nl=False)
