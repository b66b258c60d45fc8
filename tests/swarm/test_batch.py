"""Batch creation (machine.batch): names, failure accounting, rollback, the CA made once, progress views."""
from __future__ import annotations

import io
import threading

import pytest

from machine.api import Machines
from machine.batch import (BatchResult, HostResult, PlainProgress, create_many, default_parallel, expand_names,
                           progress_view)
from machine.errors import UsageError

pytestmark = pytest.mark.swarm


# ---- names ---------------------------------------------------------------------------

def test_names_as_given():
    assert expand_names(["a", "b"]) == ["a", "b"]


def test_count_with_prefix_and_template():
    assert expand_names(["web"], count=3) == ["web-1", "web-2", "web-3"]
    assert expand_names([], count=2, template="node-{n}") == ["node-1", "node-2"]
    assert expand_names([], count=2, template="n{n:02d}") == ["n01", "n02"]
    assert expand_names([], count=2) == ["node-1", "node-2"]


def test_count_skips_names_that_exist():
    assert expand_names([], count=2, template="node-{n}", existing=["node-1", "node-3"]) == ["node-2", "node-4"]


@pytest.mark.parametrize("kw, why", [
    (dict(names=["a"], count=0), "invalid -n"),
    (dict(names=[], count=2, template="node"), "must contain {n}"),
    (dict(names=[], count=2, template="node-{x}"), "invalid --name-template"),
    (dict(names=["a", "b"], count=2), "one NAME prefix"),
    (dict(names=["a"], count=2, template="n-{n}"), "not both"),
    (dict(names=[], template="n-{n}"), "needs -n"),
    (dict(names=["a", "a"]), "named twice"),
    (dict(names=["bad name"]), "invalid"),
    (dict(names=[]), "no machine name"),
])
def test_bad_names(kw, why):
    names = kw.pop("names")
    with pytest.raises(UsageError) as e:
        expand_names(names, **kw)
    assert why in str(e.value)


def test_default_parallel_by_capabilities(flaky):
    from machine.driver import get_driver_class

    cls = get_driver_class("flaky")  # a cloud: API-bound
    assert default_parallel(cls, 3) == 3 and default_parallel(cls, 50) == 10
    assert default_parallel(get_driver_class("qemu"), 1) == 1
    assert 2 <= default_parallel(get_driver_class("qemu"), 50) <= 64


# ---- create_many -----------------------------------------------------------------------

def test_one_failure_does_not_stop_the_others(store_path, flaky, monkeypatch):
    monkeypatch.setenv("MACHINE_TEST_FAIL", "n2")
    api = Machines(store_path)
    out = io.StringIO()
    result = create_many(api, ["n1", "n2", "n3"], "flaky", {"zone": "b"}, parallel=3, progress=PlainProgress(out))
    assert not result.ok
    assert [r.name for r in result.succeeded] == ["n1", "n3"]
    (bad,) = result.failed
    assert bad.name == "n2" and bad.step == "create-host" and "no capacity left for n2 in zone b" in bad.error
    # the failed one was rolled back as a single create is: its resource deleted, no record left
    assert "disk-n2" in flaky.removed and "disk-n2" not in flaky.resources
    assert api.store.names() == ["n1", "n3"]
    assert all(api.load(n).machine.phase == "ready" for n in ("n1", "n3"))
    summary = result.summary()
    assert "n2     Failed   create-host" in summary and "no capacity left for n2" in summary
    assert "2 of 3 created" in summary and "failed: n2" in summary
    lines = out.getvalue().splitlines()
    assert any(line.startswith("(n2) [") and "failed at create-host" in line for line in lines)
    assert any(line.startswith("(n1) [") and line.endswith("ready") for line in lines)


def test_serial_batch_still_runs_every_machine(store_path, flaky, monkeypatch):
    monkeypatch.setenv("MACHINE_TEST_FAIL", "n1")
    result = create_many(Machines(store_path), ["n1", "n2"], "flaky", parallel=1, progress=PlainProgress(io.StringIO()))
    assert [r.ok for r in result.results] == [False, True]


def test_ca_made_once_before_workers(store_path, flaky, monkeypatch):
    from machine import certs

    calls = []
    real = certs.generate_ca

    def counting(*a, **kw):
        calls.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(certs, "generate_ca", counting)
    api = Machines(store_path)
    result = create_many(api, [f"m{i}" for i in range(6)], "flaky", parallel=6, progress=PlainProgress(io.StringIO()))
    assert result.ok, result.summary()
    assert calls == ["MainThread"], calls  # once, before any worker thread ("create_N") started
    assert api.store.ca_cert().exists()


def test_bad_options_fail_before_anything_is_made(store_path, flaky):
    api = Machines(store_path)
    with pytest.raises(UsageError) as e:
        create_many(api, ["a", "b"], "flaky", {"size": 99}, progress=PlainProgress(io.StringIO()))
    assert "--flaky-size" in str(e.value)
    assert api.store.names() == [] and flaky.resources == {}


def test_existing_name_refused_up_front(store_path, flaky):
    api = Machines(store_path)
    api.create("a", "flaky")
    with pytest.raises(UsageError):
        create_many(api, ["a", "b"], "flaky", progress=PlainProgress(io.StringIO()))
    assert api.store.names() == ["a"]


def test_engine_options_are_not_shared_between_machines(store_path, flaky):
    from machine.model import EngineOptions

    api = Machines(store_path)
    engine = EngineOptions(labels=["a=b"])
    result = create_many(api, ["e1", "e2"], "flaky", engine=engine, progress=PlainProgress(io.StringIO()))
    assert result.ok
    h1, h2 = result.hosts()
    assert h1.engine is not h2.engine and h1.engine.labels == ["a=b"]


def test_summary_of_all_ok():
    r = BatchResult([HostResult("a", ok=True, elapsed=3.2), HostResult("b", ok=True, elapsed=4)], elapsed=4.1)
    assert r.ok and r.summary().splitlines()[-1] == "2 of 2 created in 4s"


def test_progress_view_plain_when_piped_live_on_a_terminal(monkeypatch):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress_view(stream=io.StringIO()), PlainProgress)
    monkeypatch.setenv("TERM", "xterm")
    view = progress_view(stream=TTY(), title="t")
    try:
        assert type(view).__name__ == "LiveProgress"
        view.add(["a"])
        view.start("a")
        view.step("a", "create-host")
        view.done("a", HostResult("a", ok=True, elapsed=1))
    finally:
        view.close()
    assert type(progress_view(quiet=True)).__name__ == "QuietProgress"


def test_rich_is_not_imported_by_the_cli_or_when_piped():
    import subprocess
    import sys

    code = ("import sys, io; from machine.batch import progress_view; progress_view(stream=io.StringIO()); "
            "import machine.cli.create, machine.cli.swarm, machine.cli.cluster, machine.swarm, machine.cluster; "
            "bad=[m for m in ('rich', 'docker', 'paramiko') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_step_view_for_one_long_operation():
    from machine.batch import step_view

    out = io.StringIO()
    with step_view("img", stream=out) as report:
        report("building image")
    assert "(img) [0s] building image" in out.getvalue() and out.getvalue().rstrip().endswith("ready")
    lines = []
    with step_view("img", stream=io.StringIO(), plain=lines.append) as report:  # piped: the caller's own lines
        report("x")
    assert lines == ["x"]
    with pytest.raises(RuntimeError):
        with step_view("img", stream=out) as report:
            raise RuntimeError("boom")
    assert "failed" in out.getvalue().splitlines()[-1]
