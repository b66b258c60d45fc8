"""Verbs that act on hosts through their driver: start, stop, restart, kill, provision, …"""
from __future__ import annotations

import click

from .common import for_each, pass_api, step_reporter


def _lifecycle_command(action: str, doc: str):
    @click.command(name=action, help=doc)
    @click.argument("names", nargs=-1)
    @pass_api
    def command(api, names):
        def run(n):
            getattr(api, action)(n, on_step=step_reporter(n))
        for_each(names or ("default",), run, what=f"{action}ing" if action != "stop" else "stopping")

    return command


start = _lifecycle_command("start", "Start machines (and re-check their engine).")
stop = _lifecycle_command("stop", "Stop machines gracefully.")
restart = _lifecycle_command("restart", "Restart machines (and re-check their engine).")
kill = _lifecycle_command("kill", "Stop machines forcefully.")


@click.command()
@click.argument("names", nargs=-1, required=True)
@pass_api
def provision(api, names):
    """Re-run provisioning: do only what is missing (safe to repeat)."""
    def run(n):
        result = api.provision(n, on_step=step_reporter(n))
        for line in result.plan.describe():
            click.echo(f"({n}) {line}", err=True)
    for_each(names, run, what="provisioning")


@click.command(name="regenerate-certs")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation")
@click.option("--client-certs", is_flag=True, help="Also regenerate the client certificate")
@click.argument("names", nargs=-1, required=True)
@pass_api
def regenerate_certs(api, force, client_certs, names):
    """Issue new server certificates and reload engines without stopping containers."""
    if not force and not click.confirm(f"Regenerate TLS machine certs for {', '.join(names)}?", default=True):
        return
    for_each(names, lambda n: api.regenerate_certs(n, client_certs=client_certs, on_step=step_reporter(n)),
             what="regenerating certificates of")


@click.command()
@click.argument("names", nargs=-1, required=True)
@pass_api
def upgrade(api, names):
    """Upgrade the engine to the newest version the install strategy offers."""
    for_each(names, lambda n: api.upgrade(n, on_step=step_reporter(n)), what="upgrading")
