"""`machine cluster create|ls|scale|rm`: whole swarm clusters."""
from __future__ import annotations

import os

import click

from .common import get_api, step_reporter
from .create import CreateCommand, _given_driver_values


@click.group()
def cluster():
    """Swarm clusters: NAME-manager-N and NAME-worker-N machines, a private network, a docker context NAME."""


@cluster.command("create", cls=CreateCommand)
@click.option("-d", "--driver", envvar="MACHINE_DRIVER", help="Driver that makes the hosts [env MACHINE_DRIVER]")
@click.option("--managers", type=int, default=1, show_default=True, help="Manager machines")
@click.option("--workers", type=int, default=0, show_default=True, help="Worker machines")
@click.option("--parallel", type=int, default=None, help="Machines made at once [default: per driver]")
@click.option("--engine-install", type=click.Choice(["script", "package", "bundle", "none"]), default=None,
              help="How to install the engine where it is missing")
@click.option("--engine-bundle", type=click.Path(exists=True), default=None, help="Offline bundle of engine packages")
@click.option("--ssh-timeout", default=600, show_default=True, help="Seconds to wait for SSH")
@click.option("--keep-on-failure", is_flag=True, help="Keep what was made when something fails")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines")
@click.argument("name")
@click.pass_context
def create(ctx, driver, managers, workers, parallel, engine_install, engine_bundle, ssh_timeout, keep_on_failure,
           quiet, name, **driver_values):
    """Create cluster NAME: machines made in parallel, swarm formed, docker context NAME at a manager."""
    from ..batch import progress_view
    from ..cluster import Cluster, ClusterFailed
    from ..errors import UsageError
    from ..model import EngineOptions

    if not driver:
        raise UsageError("no driver given", "pass -d DRIVER (e.g. -d qemu)")
    engine = EngineOptions(install=engine_install or "", bundle=os.path.abspath(engine_bundle) if engine_bundle else "")
    api = get_api(ctx)
    view = progress_view(quiet=quiet, title=f"cluster {name}: {managers} manager(s), {workers} worker(s) ({driver})")
    try:
        c = Cluster.create(name, managers=managers, workers=workers, driver=driver, api=api, parallel=parallel,
                           driver_options=_given_driver_values(ctx, driver_values), progress=view,
                           keep_on_failure=keep_on_failure, engine=engine, ssh_deadline_s=ssh_timeout,
                           on_step=step_reporter(name, quiet))
    except ClusterFailed as e:
        if e.result is not None:
            click.echo(e.result.summary(), nl=False)
        raise
    if not quiet:
        click.echo(f"Cluster {name} is ready: {', '.join(c.machines)}", err=True)
        click.echo(f"Point your docker client at it: docker --context {c.context} node ls", err=True)


@cluster.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Names only")
@click.pass_context
def ls_(ctx, quiet):
    """Clusters in the store: managers, workers, driver."""
    from ..cluster import Cluster

    api = get_api(ctx)
    names = Cluster.names(api)
    if quiet:
        for n in names:
            click.echo(n)
        return
    rows = [("NAME", "MANAGERS", "WORKERS", "DRIVER", "CONTEXT")]
    for n in names:
        c = Cluster(n, api)
        try:
            drv = c.spec().get("Driver", "")
        except Exception:
            drv = "?"
        rows.append((n, str(len(c.managers)), str(len(c.workers)), drv, c.context))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


@cluster.command()
@click.option("--workers", type=int, required=True, help="Workers wanted")
@click.option("--parallel", type=int, default=None, help="Machines made at once")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines")
@click.argument("name")
@click.pass_context
def scale(ctx, workers, parallel, quiet, name):
    """Add workers (made with the cluster's driver and options, then joined) or remove the newest."""
    from ..batch import progress_view
    from ..cluster import Cluster, ClusterFailed

    c = Cluster(name, get_api(ctx))
    view = progress_view(quiet=quiet, title=f"cluster {name}: scaling to {workers} worker(s)")
    try:
        changed = c.scale(workers=workers, parallel=parallel, progress=view, on_step=step_reporter(name, quiet))
    except ClusterFailed as e:
        if e.result is not None:
            click.echo(e.result.summary(), nl=False)
        raise
    if not quiet:
        click.echo(f"Cluster {name} has {len(c.workers)} worker(s)"
                   + (f" (changed: {', '.join(changed)})" if changed else ""), err=True)


@cluster.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("-f", "--force", is_flag=True, help="Accepted for symmetry with rm (a cluster rm always removes all)")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, yes, force, names):
    """Remove every machine of cluster NAME and its context: nothing is left."""
    from ..cluster import Cluster
    from ..errors import NotFound
    from .common import for_each

    api = get_api(ctx)
    if not yes and not force:
        click.echo("About to remove cluster(s) " + ", ".join(names), err=True)
        if not click.confirm("Are you sure?", default=False):
            raise click.exceptions.Exit(1)

    def one(n):
        c = Cluster(n, api)
        if not c.exists():
            raise NotFound(f"cluster {n!r} does not exist", "see: machine cluster ls")
        c.rm(on_step=step_reporter(n))
        click.echo(f"Removed cluster {n}", err=True)

    return for_each(list(names), one, what="cluster rm")
