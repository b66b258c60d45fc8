"""pytest plugin (entry point `pytest11: machine`): a ready swarm cluster for a test session.

    # pytest.ini / pyproject [tool.pytest.ini_options]
    machine_cluster_driver = qemu
    machine_cluster_workers = 2
    machine_cluster_driver_options = memory=768

    def test_service(machine_cluster):                # session-scoped: made once, removed at the end
        machine_cluster.docker("service", "create", "--name", "web", "--replicas", "2", ...)

    @pytest.mark.cluster(name="big", workers=4)       # another shape for one test (made once per session)
    def test_big(swarm_cluster): ...

Settings (ini option, or the `cluster` marker's keyword with the same name, marker wins):
name (machine_cluster_name, default "pytest"), driver, managers, workers, driver_options
(KEY=VALUE lines, or options={...} in the marker), reuse (an existing cluster of that name is
used as it is and kept), keep (do not remove at the end), storage_path (the machine store; env
MACHINE_STORAGE_PATH else ~/.docker/machine), parallel.
Override the `machine_cluster_store` fixture to put the store somewhere else.

Nothing is imported from machine's heavy modules until a cluster fixture is used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

INI = {
    "name": ("machine_cluster_name", "pytest", "name of the test cluster (its machines are NAME-manager-1, …)"),
    "driver": ("machine_cluster_driver", "qemu", "driver that makes the cluster's machines"),
    "managers": ("machine_cluster_managers", "1", "manager machines"),
    "workers": ("machine_cluster_workers", "2", "worker machines"),
    "parallel": ("machine_cluster_parallel", "", "machines made at once (default: per driver)"),
    "reuse": ("machine_cluster_reuse", "false", "use an existing cluster of that name as it is, and keep it"),
    "keep": ("machine_cluster_keep", "false", "keep the cluster after the session"),
    "storage_path": ("machine_cluster_storage_path", "", "machine store (default: MACHINE_STORAGE_PATH or ~/.docker/machine)"),
}
OPTIONS_INI = "machine_cluster_driver_options"


@dataclass(frozen=True)
class ClusterSpec:
    name: str = "pytest"
    driver: str = "qemu"
    managers: int = 1
    workers: int = 2
    driver_options: tuple = field(default=())   # sorted (key, value) pairs
    reuse: bool = False
    keep: bool = False
    parallel: int = 0


def _bool(v) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")


def _options(lines) -> dict:
    if isinstance(lines, dict):
        return dict(lines)
    out = {}
    for line in lines or ():
        for item in str(line).split():
            key, sep, value = item.partition("=")
            if not sep:
                raise pytest.UsageError(f"{OPTIONS_INI}: {item!r} is not KEY=VALUE")
            out[key.strip().replace("-", "_")] = value
    return out


def spec_from(config, marker=None) -> ClusterSpec:
    """The ini options, overridden by a `cluster` marker's keywords."""
    values = {k: config.getini(ini) for k, (ini, _, _) in INI.items()}
    options = _options(config.getini(OPTIONS_INI))
    if marker is not None:
        kw = dict(marker.kwargs)
        if marker.args:
            kw.setdefault("name", marker.args[0])
        unknown = set(kw) - set(INI) - {"options", "driver_options"}
        if unknown:
            raise pytest.UsageError(f"@pytest.mark.cluster: unknown keyword(s) {', '.join(sorted(unknown))}")
        options.update(_options(kw.pop("options", None) or kw.pop("driver_options", None) or {}))
        values.update(kw)
    try:
        return ClusterSpec(name=str(values["name"]), driver=str(values["driver"]), managers=int(values["managers"]),
                           workers=int(values["workers"]), driver_options=tuple(sorted(options.items())),
                           reuse=_bool(values["reuse"]), keep=_bool(values["keep"]),
                           parallel=int(values["parallel"] or 0))
    except ValueError as e:
        raise pytest.UsageError(f"machine cluster settings: {e}") from None


def pytest_addoption(parser):
    for _, (ini, default, help_text) in INI.items():
        parser.addini(ini, help_text, default=default)
    parser.addini(OPTIONS_INI, "driver options for the cluster's machines, KEY=VALUE (e.g. memory=768)",
                  type="linelist", default=[])


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cluster(name=, driver=, managers=, workers=, options={}, reuse=, keep=): the swarm cluster "
                   "the swarm_cluster fixture gives this test (machine's pytest plugin)")


class ClusterPool:
    """Clusters made during the session, one per distinct spec; removed at the end unless kept or reused."""

    def __init__(self, storage_path):
        self.storage_path = storage_path
        self._made: dict[ClusterSpec, object] = {}

    def get(self, spec: ClusterSpec):
        if spec in self._made:
            return self._made[spec]
        from .api import Machines
        from .cluster import Cluster

        api = Machines(self.storage_path)
        existing = Cluster(spec.name, api)
        if existing.exists() and not spec.reuse:
            raise pytest.UsageError(f"a cluster named {spec.name} exists in {api.store.path}; set "
                                    f"machine_cluster_reuse = true to use it, or remove it (machine cluster rm {spec.name})")
        cluster = Cluster.create(spec.name, managers=spec.managers, workers=spec.workers, driver=spec.driver,
                                 driver_options=dict(spec.driver_options), api=api, parallel=spec.parallel or None,
                                 reuse=spec.reuse, remove_on_exit=not spec.keep)
        self._made[spec] = cluster
        return cluster

    def close(self) -> None:
        errors = []
        for cluster in reversed(list(self._made.values())):
            if cluster.remove_on_exit:
                try:
                    cluster.rm()
                except Exception as e:  # every cluster gets its chance to go
                    errors.append(f"{cluster.name}: {e}")
        self._made.clear()
        if errors:
            raise RuntimeError("machine clusters left behind: " + "; ".join(errors))


@pytest.fixture(scope="session")
def machine_cluster_store(pytestconfig):
    """The machine store the cluster fixtures use (override this fixture to choose another)."""
    return pytestconfig.getini(INI["storage_path"][0]) or os.environ.get("MACHINE_STORAGE_PATH") or None


@pytest.fixture(scope="session")
def machine_cluster_pool(machine_cluster_store):
    pool = ClusterPool(machine_cluster_store)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def machine_cluster(pytestconfig, machine_cluster_pool):
    """A ready swarm cluster (machine.cluster.Cluster) configured by the ini options; made once per session."""
    return machine_cluster_pool.get(spec_from(pytestconfig))


@pytest.fixture
def swarm_cluster(request, machine_cluster_pool):
    """The cluster this test's `cluster` marker describes (else the ini one); each shape made once per session."""
    return machine_cluster_pool.get(spec_from(request.config, request.node.get_closest_marker("cluster")))
