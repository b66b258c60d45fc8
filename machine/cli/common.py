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


def print_error(e: BaseException, *, debug: bool, prefix: str = "") -> None:
    """One line for the user; with --debug first the traceback and any debug detail
    the error carries (host-key fingerprints, the failing command's output)."""
    from ..errors import error_line, error_message

    if debug:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)
        extra = getattr(e, "debug", None) or getattr(getattr(e, "__cause__", None), "debug", None)
        if extra:
            click.echo(str(extra), err=True)
        details = error_message(e).partition("\n")[2]
        if details:  # e.g. the last lines a failing install printed
            click.echo(details, err=True)
    click.echo(error_line(e, prefix=prefix, debug=debug), err=True)


def debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx else None
    return bool(isinstance(obj, dict) and obj.get("debug"))


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
            print_error(e, debug=debug_enabled(), prefix="" if len(names) == 1 else f"{what} {n}: ")
    if failed:
        raise click.exceptions.Exit(1)
    return 0


def default_name(name: str | None) -> str:
    # docker-machine's verbs act on "default" when no name is given.
    return name or "default"
