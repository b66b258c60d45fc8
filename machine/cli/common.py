"""Helpers shared by the CLI verbs: the API object, progress lines, name lists."""
from __future__ import annotations

import functools

import click


def get_api(ctx: click.Context):
    from ..api import Machines

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return Machines(obj.get("storage_path"))


def pass_api(f):
    """Inject a Machines facade built from the global --storage-path."""

    @click.pass_context
    @functools.wraps(f)
    def wrapper(ctx, *args, **kwargs):
        return f(get_api(ctx), *args, **kwargs)

    return wrapper


def step_reporter(name: str | None = None, quiet: bool = False):
    """Progress lines on stderr, so stdout stays clean for scripts."""

    def report(step: str) -> None:
        if not quiet:
            prefix = f"({name}) " if name else ""
            click.echo(f"{prefix}{step}", err=True)

    return report


def for_each(names, fn, *, what: str) -> int:
    """Run fn(name) for each name; report failures one line each; exit 1 if any failed."""
    from ..errors import MachineError

    failed = 0
    for n in names:
        try:
            fn(n)
        except MachineError as e:
            failed += 1
            # One line per failed machine; the name is in front when several were asked for.
            click.echo(f"Error: {e}" if len(names) == 1 else f"Error: {what} {n}: {e}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
    return 0


def default_name(name: str | None) -> str:
    # docker-machine's verbs act on "default" when no name is given.
    return name or "default"
