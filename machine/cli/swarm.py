"""`machine swarm init|join|promote|demote|leave|ls`: swarm mode on existing machines."""
from __future__ import annotations

import json

import click

from .common import get_api, step_reporter


def _swarm(ctx, name=None, quiet=False):
    from ..swarm import Swarm

    return Swarm(get_api(ctx), on_step=step_reporter(name, quiet))


@click.group()
def swarm():
    """Swarm mode: init, join, promote, demote, leave, ls (through the engine API over mutual TLS)."""


@swarm.command()
@click.option("--advertise-addr", default=None, help="Address other nodes reach this one by "
              "[default: the machine's private address]")
@click.option("--label", "labels", multiple=True, help="Node label KEY=VALUE (repeatable)")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines")
@click.argument("name")
@click.pass_context
def init(ctx, advertise_addr, labels, quiet, name):
    """Make NAME the first manager of a new swarm."""
    from ..swarm import parse_labels

    rec = _swarm(ctx, name, quiet).init(name, advertise_addr=advertise_addr, labels=parse_labels(labels))
    click.echo(f"{name} manages a new swarm ({rec['AdvertiseAddr'] or 'default address'})", err=True)


@swarm.command()
@click.option("--manager", "-m", required=True, help="A machine that manages the swarm")
@click.option("--as", "role", type=click.Choice(["worker", "manager"]), default="worker", show_default=True)
@click.option("--advertise-addr", default=None, help="Address other nodes reach this one by "
              "[default: the machine's private address]")
@click.option("--label", "labels", multiple=True, help="Node label KEY=VALUE (repeatable)")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines")
@click.argument("name")
@click.pass_context
def join(ctx, manager, role, advertise_addr, labels, quiet, name):
    """Join NAME to the swarm MANAGER manages (the join token is read from MANAGER now, never kept)."""
    from ..swarm import parse_labels

    _swarm(ctx, name, quiet).join(name, manager=manager, role=role, advertise_addr=advertise_addr,
                                  labels=parse_labels(labels))
    click.echo(f"{name} joined the swarm of {manager} as a {role}", err=True)


@swarm.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def promote(ctx, names):
    """Make worker NAME a manager."""
    from .common import for_each

    sw = _swarm(ctx)
    return for_each(names, sw.promote, what="promote")


@swarm.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def demote(ctx, names):
    """Make manager NAME a worker (never the last manager)."""
    from .common import for_each

    sw = _swarm(ctx)
    return for_each(names, sw.demote, what="demote")


@swarm.command()
@click.option("-f", "--force", is_flag=True, help="Leave even as the last manager (the swarm ends)")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def leave(ctx, force, names):
    """Take NAME out of its swarm (a manager is demoted first); its node is dropped from the list."""
    from .common import for_each

    def one(n):
        if not _swarm(ctx, n).leave(n, force=force):
            click.echo(f"{n} is in no swarm", err=True)

    return for_each(names, one, what="leave")


@swarm.command("ls")
@click.option("-f", "--format", "fmt", default=None, help="json, or a Go template over each node's fields")
@click.argument("manager", required=False)
@click.pass_context
def ls_(ctx, fmt, manager):
    """The swarm's nodes as MANAGER reports them: role, availability, state."""
    rows = _swarm(ctx).ls(manager)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if fmt:
        from ..gotemplate import render

        for r in rows:
            click.echo(render(fmt, r.as_dict()))
        return
    table = [("MACHINE", "HOSTNAME", "ROLE", "AVAILABILITY", "STATE", "MANAGER STATUS", "ADDRESS", "ENGINE")]
    for r in rows:
        table.append((r.machine or "-", r.hostname, r.role, r.availability, r.state, r.manager_status, r.address,
                      r.engine))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("   ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


# --------------------------------------------------------------------------- `machine create` flags

def _legacy(ctx, param, value):
    if value not in (None, False, "", ()):
        from ..errors import UsageError
        from ..swarm import LEGACY_MESSAGE

        flag = param.opts[0]
        raise UsageError(LEGACY_MESSAGE.format(flag=flag))
    return value


def create_options(f):
    """The swarm and batch flags of `machine create` (their values reach create's **kwargs)."""
    from ..swarm import LEGACY_FLAGS

    opts = [
        click.option("--swarm-manager", is_flag=True, default=False,
                     help="Make the machine a swarm manager: of a new swarm, or of MANAGER's with --swarm-join"),
        click.option("--swarm-worker", is_flag=True, default=False,
                     help="Join the swarm of --swarm-join MANAGER as a worker"),
        click.option("--swarm-join", default="", metavar="MANAGER_MACHINE",
                     help="The machine managing the swarm to join (its join token is read at join time, never kept)"),
        click.option("--swarm-advertise-addr", default="",
                     help="Address other nodes reach this one by [default: the machine's private address]"),
        click.option("--swarm-node-label", multiple=True, help="Swarm node label KEY=VALUE (repeatable)"),
        click.option("-n", "--count", type=int, default=None,
                     help="Create N machines: NAME-1…NAME-N, or --name-template's names"),
        click.option("--name-template", default=None, help="Names for -n, with {n} for 1, 2, … (e.g. 'node-{n}')"),
        click.option("--parallel", type=int, default=None,
                     help="Machines made at once with several names or -n [default: per driver]"),
    ]
    for flag in LEGACY_FLAGS:
        is_flag = flag in ("--swarm", "--swarm-master", "--swarm-experimental")
        kw = {"is_flag": True, "default": False} if is_flag else {"default": None}
        if flag in ("--swarm-opt", "--swarm-join-opt"):
            kw = {"multiple": True, "default": ()}
        opts.append(click.option(flag, "legacy__" + flag.strip("-").replace("-", "_"), hidden=True,
                                 expose_value=False, callback=_legacy, **kw))
    for opt in reversed(opts):
        f = opt(f)
    return f


def batch_or_single(ctx, api, names, driver: str, values: dict, *, driver_options: dict, quiet: bool,
                    **create_kw):
    """For `machine create`: returns (name, swarm request) for one machine; with several NAMEs or
    -n it creates them all in parallel, prints the summary and exits (0 only if all succeeded)."""
    from ..batch import create_many, expand_names, progress_view
    from ..errors import UsageError
    from ..swarm import SwarmRequest

    req = SwarmRequest.from_flags(manager=values.get("swarm_manager", False), worker=values.get("swarm_worker", False),
                                  join=values.get("swarm_join", ""), advertise_addr=values.get("swarm_advertise_addr", ""),
                                  labels=values.get("swarm_node_label", ()))
    count, template, parallel = values.get("count"), values.get("name_template"), values.get("parallel")
    names = list(names or ())
    if count is None and len(names) <= 1 and not template:
        if not names:
            raise UsageError("no machine name given", "machine create -d DRIVER NAME (or several NAMEs, or -n N)")
        if parallel is not None:
            raise UsageError("--parallel goes with several NAMEs or -n")
        return names[0], req
    names = expand_names(names, count=count, template=template, existing=api.store.names())
    if req is not None and req.advertise_addr and len(names) > 1:
        raise UsageError("--swarm-advertise-addr names one address; it cannot serve several machines",
                         "leave it out: each machine advertises its private address")
    if req is not None:
        req.check(api, names[0])
    view = progress_view(quiet=quiet, title=f"creating {len(names)} machines ({driver})")
    result = create_many(api, names, driver, driver_options, parallel=parallel, progress=view, swarm=req,
                         **create_kw)
    click.echo(result.summary(), nl=False)
    for r in result.failed:
        if r.error:
            click.echo(f"Error: {r.name}: {r.error}" + (f": {r.hint}" if r.hint else ""), err=True)
    raise click.exceptions.Exit(0 if result.ok else 1)
