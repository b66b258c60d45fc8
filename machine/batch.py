"""Batch creation: many machines at once, in parallel, with a live per-host progress view.

    from machine.api import Machines
    from machine.batch import create_many
    result = create_many(Machines(), ["n1", "n2", "n3"], "qemu", {"memory": 768}, parallel=3)
    result.ok            # True only when every machine is Ready
    result.failed        # [HostResult(name, step, error, ...)]

The CA and client certificate are made once, before the workers start. Each machine is
made by `Machines.create`, so a failed one is rolled back exactly as a single create is,
and one failure never stops the others. On a terminal the view is a live table (rich,
imported only when drawing); piped, it is one plain line per step.
"""
from __future__ import annotations

import contextlib
import copy
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TextIO

from .errors import MachineError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Machines
    from .model import Host

DEFAULT_TEMPLATE = "node-{n}"


# --------------------------------------------------------------------------- names

def expand_names(names: Sequence[str] = (), *, count: int | None = None, template: str | None = None,
                 existing: Iterable[str] = ()) -> list[str]:
    """The machines a batch makes.

    NAME...                      those names
    -n N --name-template T       T with {n} = 1, 2, … skipping names that exist already
    -n N NAME                    NAME-1 … NAME-N (the same, with template "NAME-{n}")
    """
    from .store import validate_name

    names = list(names)
    if count is None:
        if template:
            raise UsageError("--name-template needs -n/--count", "e.g. machine create -n 3 --name-template 'node-{n}'")
        out = names
    else:
        if count < 1:
            raise UsageError(f"invalid -n {count}", "give 1 or more")
        if template and names:
            raise UsageError("give either NAMEs or --name-template with -n, not both")
        if len(names) > 1:
            raise UsageError("-n takes one NAME prefix", "e.g. machine create -n 3 web  (web-1, web-2, web-3)")
        template = template or (f"{names[0]}-{{n}}" if names else DEFAULT_TEMPLATE)
        if "{n" not in template:
            raise UsageError(f"invalid --name-template {template!r}", "it must contain {n}, e.g. 'node-{n}'")
        taken = set(existing)
        out, n = [], 0
        while len(out) < count:
            n += 1
            try:
                name = template.format(n=n)
            except (KeyError, IndexError, ValueError) as e:
                raise UsageError(f"invalid --name-template {template!r} ({e})", "use {n} for the number") from None
            if name in taken:
                continue
            out.append(name)
            if n > count + len(taken) + 1:
                break
    if not out:
        raise UsageError("no machine name given", "give NAME..., or -n N --name-template 'node-{n}'")
    seen = set()
    for name in out:
        validate_name(name)
        if name in seen:
            raise UsageError(f"machine {name!r} is named twice")
        seen.add(name)
    return out


def default_parallel(driver_cls, count: int) -> int:
    """How many creates run at once unless --parallel says: a driver may set `default_parallel`;
    local hypervisors are bounded by cores (each VM is CPU-heavy while it boots), clouds by API limits."""
    explicit = getattr(driver_cls, "default_parallel", None)
    if explicit:
        return max(1, min(count, int(explicit)))
    caps = driver_cls.capabilities
    if caps.cloud:
        limit = 10
    elif caps.local_state and caps.provision:
        limit = max(2, (os.cpu_count() or 2) * 2)  # boot is mostly waiting; provision is short
    else:
        limit = 8
    return max(1, min(count, limit))


# --------------------------------------------------------------------------- results

@dataclass
class HostResult:
    name: str
    ok: bool = False
    step: str = ""              # the last step reached (the failing one when not ok)
    error: str = ""
    hint: str = ""
    elapsed: float = 0.0
    host: "Host | None" = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return "Ready" if self.ok else ("Failed" if self.error else "Not started")


@dataclass
class BatchResult:
    results: list[HostResult]
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def succeeded(self) -> list[HostResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[HostResult]:
        return [r for r in self.results if not r.ok]

    def hosts(self) -> list["Host"]:
        return [r.host for r in self.results if r.ok and r.host is not None]

    def summary(self) -> str:
        """A plain table: NAME RESULT STEP TIME ERROR."""
        rows = [("NAME", "RESULT", "STEP", "TIME", "ERROR")]
        for r in self.results:
            err = (r.error.splitlines()[0] if r.error else "")
            rows.append((r.name, r.status, "" if r.ok else r.step, f"{r.elapsed:.0f}s", err))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["   ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "   " + row[4] for row in rows]
        n_ok = len(self.succeeded)
        lines.append(f"{n_ok} of {len(self.results)} created in {self.elapsed:.0f}s"
                     + (f"; failed: {', '.join(r.name for r in self.failed)}" if self.failed else ""))
        return "\n".join(line.rstrip() for line in lines) + "\n"


# --------------------------------------------------------------------------- progress views

class Progress:
    """Per-host progress: `start(name)`, `step(name, text)`, `done(name, result)`; `close()` at the end."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.started: dict[str, float] = {}
        self.steps: dict[str, str] = {}
        self.finished: dict[str, HostResult] = {}
        self._lock = threading.Lock()

    def add(self, names: Iterable[str]) -> None:
        with self._lock:
            for n in names:
                self.steps.setdefault(n, "waiting")

    def start(self, name: str) -> None:
        with self._lock:
            self.started[name] = time.monotonic()
            self.steps[name] = "starting"
        self._emit(name, "starting")

    def step(self, name: str, text: str) -> None:
        with self._lock:
            self.steps[name] = text
        self._emit(name, text)

    def done(self, name: str, result: HostResult) -> None:
        with self._lock:
            self.finished[name] = result
            self.steps[name] = "ready" if result.ok else f"failed at {result.step}"
        self._emit(name, self.steps[name] + ("" if result.ok else f": {result.error.splitlines()[0] if result.error else ''}"))

    def elapsed(self, name: str) -> float:
        if name in self.finished:
            return self.finished[name].elapsed
        t = self.started.get(name)
        return time.monotonic() - t if t else 0.0

    def reporter(self, name: str) -> Callable[[str], None]:
        return lambda text: self.step(name, text)

    def _emit(self, name: str, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PlainProgress(Progress):
    """One line per step, `(name) [12s] step`, for pipes and logs."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        self.stream = stream
        self._out = threading.Lock()

    def _emit(self, name: str, text: str) -> None:
        stream = self.stream or sys.stderr
        with self._out:
            print(f"({name}) [{self.elapsed(name):.0f}s] {text}", file=stream, flush=True)


class QuietProgress(Progress):
    pass


class LiveProgress(Progress):
    """A live table (rich), one row per host: step and elapsed time, redrawn 4 times a second."""

    def __init__(self, stream: TextIO | None = None, title: str = ""):
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.console = Console(file=stream or sys.stderr)
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False,
                         get_renderable=self._table)
        self.live.start()

    def _table(self):
        from rich.table import Table

        table = Table(title=self.title or None, show_edge=False, pad_edge=False, box=None)
        table.add_column("HOST", no_wrap=True)
        table.add_column("TIME", justify="right")
        table.add_column("STEP", overflow="ellipsis", no_wrap=True)
        with self._lock:
            items = list(self.steps.items())
        for name, step in items:
            res = self.finished.get(name)
            style = "green" if res and res.ok else ("red" if res else ("" if name in self.started else "dim"))
            table.add_row(name, f"{self.elapsed(name):.0f}s", step, style=style)
        return table

    def close(self) -> None:
        self.live.stop()


def progress_view(*, quiet: bool = False, stream: TextIO | None = None, title: str = "") -> Progress:
    """The view for this output: quiet, a live table on a terminal (if rich is installed), else plain lines."""
    if quiet:
        return QuietProgress()
    stream = stream or sys.stderr
    if _is_terminal(stream) and os.environ.get("TERM", "") != "dumb":
        try:
            return LiveProgress(stream, title=title)
        except ImportError:
            pass
    return PlainProgress(stream)


@contextlib.contextmanager
def step_view(name: str, *, quiet: bool = False, stream: TextIO | None = None,
              plain: Callable[[str], None] | None = None):
    """The same view for one long operation (a single create, an image build, an engine install):
    a live one-row table on a terminal; piped, `plain` (e.g. the CLI's own step lines) if given.

        with step_view("node1") as report:
            api.create("node1", "qemu", on_step=report)
    """
    stream = stream or sys.stderr
    if plain is not None and not (not quiet and _is_terminal(stream)):
        yield plain
        return
    view = progress_view(quiet=quiet, stream=stream, title="")
    view.add([name])
    view.start(name)
    res = HostResult(name)
    t0 = time.monotonic()
    try:
        yield view.reporter(name)
        res.ok = True
    except BaseException as e:
        res.error = str(getattr(e, "message", "") or e) or type(e).__name__
        raise
    finally:
        res.elapsed = time.monotonic() - t0
        view.done(name, res)
        view.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- create_many

def create_many(api: "Machines", names: Sequence[str], driver_name: str, driver_options: dict | None = None, *,
                parallel: int | None = None, options_for: Callable[[str], dict] | None = None,
                progress: Progress | None = None, swarm=None, labels_for: Callable[[str], dict] | None = None,
                **create_kw) -> BatchResult:
    """Create machines `names` in parallel; never raises for a single machine's failure.

    `driver_options` apply to every machine, `options_for(name)` adds per-machine ones.
    `swarm` (a machine.swarm.SwarmRequest) applies to each; a new swarm (--swarm-manager
    without --swarm-join) is initialised by the first machine and the others join it.
    Other keywords go to `Machines.create` (engine=, tls=, keep_on_failure=, ssh_deadline_s=).
    """
    from .driver import get_driver_class
    from .validate import TLSOptions, tls_options

    t0 = time.monotonic()
    names = list(names)
    cls = get_driver_class(driver_name)
    parallel = default_parallel(cls, len(names)) if not parallel else int(parallel)
    if parallel < 1:
        raise UsageError(f"invalid --parallel {parallel}", "give 1 or more")
    for name in names:
        if api.store.exists(name):
            raise UsageError(f"machine {name!r} already exists", f"pick other names or remove it: machine rm {name}")
    # Check every machine's options before anything is made: a typo fails all at once, not N times.
    for name in names:
        opts = {**(driver_options or {}), **(options_for(name) if options_for else {})}
        cls.Config.from_options(dict(opts), driver_name=cls.name, machine_name=name)
    # The CA once, before the workers start (they would otherwise race for the store lock).
    tls = create_kw.get("tls") or TLSOptions()
    create_kw["tls"] = tls
    api._prepare_certs(tls_options(tls))

    progress = progress or PlainProgress()
    progress.add(names)
    results = {n: HostResult(n) for n in names}
    cancel = threading.Event()

    def one(name: str, req=None) -> HostResult:
        res = results[name]
        if cancel.is_set():
            res.error, res.step = "not started (interrupted)", "waiting"
            progress.done(name, res)
            return res
        progress.start(name)
        t = time.monotonic()

        def report(text: str) -> None:
            head = str(text).split(" ", 1)[0]
            if head in _STEPS and head != "rolling":
                res.step = head
            progress.step(name, text)

        opts = {**(driver_options or {}), **(options_for(name) if options_for else {})}
        kw = dict(create_kw)
        if kw.get("engine") is not None:  # Machines.create fills engine options in place: one copy each
            kw["engine"] = copy.deepcopy(kw["engine"])
        if req is not None:
            kw["swarm_mode"] = req
        if labels_for:
            kw["labels"] = labels_for(name)
        try:
            res.host = api.create(name, cls.name, opts, on_step=report, **kw)
            res.ok = True
        except MachineError as e:
            res.error, res.hint = e.message, e.hint or ""
            res.step = _failed_step(e.message, res.step)
        except Exception as e:  # a driver bug in one worker must not hide the others' results
            res.error = f"{type(e).__name__}: {e}"
        finally:
            res.elapsed = time.monotonic() - t
        progress.done(name, res)
        return res

    first_req, rest_req = swarm, swarm
    try:
        if swarm is not None and swarm.role == "manager" and not swarm.join and len(names) > 1:
            # a new swarm: the first machine initialises it, the others join it as managers
            import dataclasses

            one(names[0], first_req)
            todo = names[1:]
            if results[names[0]].ok:
                rest_req = dataclasses.replace(swarm, join=names[0])
            else:
                for n in todo:
                    results[n].error = f"not started: {names[0]} (the first manager) failed"
                    results[n].step = "waiting"
                    progress.done(n, results[n])
                todo = []
        else:
            todo = names
        if todo:
            with ThreadPoolExecutor(max_workers=min(parallel, len(todo)), thread_name_prefix="create") as pool:
                futures = [pool.submit(one, n, rest_req) for n in todo]
                try:
                    for f in futures:
                        while not f.done():
                            time.sleep(0.2)
                except KeyboardInterrupt:
                    cancel.set()  # machines being made finish (and roll back if they fail); no new ones start
                    progress.step(todo[0], "interrupted: waiting for the machines being made")
                    raise
    finally:
        progress.close()
    return BatchResult([results[n] for n in names], elapsed=time.monotonic() - t0)


_STEPS = ("pre-create-check", "create-host", "provision", "swarm", "client-config", "rolling")


def _failed_step(message: str, fallback: str) -> str:
    head = message.split(":", 1)[0].split(" ", 1)[0]
    for s in _STEPS:
        if head == s or message.startswith(s):
            return s
    return fallback or "create"
