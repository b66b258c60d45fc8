"""The pytest plugin (entry point pytest11 = machine.pytest_plugin): settings and cluster reuse.

Making a real cluster is the e2e tier's business (tests/examples/test_cluster_fixture_example.py);
here the fixture is given an existing cluster by name (reuse), which makes nothing."""
from __future__ import annotations

import textwrap

import pytest

from machine.api import Machines
from machine.cluster import CLUSTER_LABEL, ROLE_LABEL
from machine.pytest_plugin import ClusterPool, ClusterSpec, spec_from

pytestmark = pytest.mark.swarm
pytest_plugins = ["pytester"]


class Config:
    def __init__(self, **ini):
        self.ini = ini

    def getini(self, name):
        from machine.pytest_plugin import INI, OPTIONS_INI

        defaults = {ini: default for _, (ini, default, _) in INI.items()}
        defaults[OPTIONS_INI] = []
        return self.ini.get(name, defaults[name])


def test_spec_from_ini_and_marker():
    cfg = Config(machine_cluster_workers="3", machine_cluster_driver_options=["memory=768", "cpus=1"])
    s = spec_from(cfg)
    assert s == ClusterSpec(name="pytest", driver="qemu", managers=1, workers=3,
                            driver_options=(("cpus", "1"), ("memory", "768")))
    marker = pytest.mark.cluster("big", workers=4, options={"memory": 512}, reuse=True).mark
    s = spec_from(cfg, marker)
    assert (s.name, s.workers, s.reuse, dict(s.driver_options)["memory"]) == ("big", 4, True, 512)
    with pytest.raises(pytest.UsageError):
        spec_from(cfg, pytest.mark.cluster(wrokers=2).mark)
    with pytest.raises(pytest.UsageError):
        spec_from(Config(machine_cluster_driver_options=["memory"]))


def _existing_cluster(store_path, name="r1"):
    api = Machines(store_path)
    for m, role in ((f"{name}-manager-1", "manager"), (f"{name}-worker-1", "worker")):
        api.create(m, "fake", labels={CLUSTER_LABEL: name, ROLE_LABEL: role})
    return api


def test_pool_reuses_and_keeps_an_existing_cluster(store_path, fake_driver):
    api = _existing_cluster(store_path)
    pool = ClusterPool(str(store_path))
    c = pool.get(ClusterSpec(name="r1", driver="fake", reuse=True))
    assert c.machines == ["r1-manager-1", "r1-worker-1"] and not c.remove_on_exit
    assert pool.get(ClusterSpec(name="r1", driver="fake", reuse=True)) is c  # once per session
    pool.close()
    assert api.store.names() == ["r1-manager-1", "r1-worker-1"]  # reused: kept
    with pytest.raises(pytest.UsageError):
        ClusterPool(str(store_path)).get(ClusterSpec(name="r1", driver="fake"))


def test_plugin_loads_through_its_entry_point(pytester, store_path, fake_driver):
    _existing_cluster(store_path, "ex")
    pytester.makeini(textwrap.dedent("""
        [pytest]
        machine_cluster_name = ex
        machine_cluster_reuse = true
    """))
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        def test_session_cluster(machine_cluster):
            assert machine_cluster.name == "ex"
            assert machine_cluster.managers == ["ex-manager-1"] and machine_cluster.workers == ["ex-worker-1"]

        @pytest.mark.cluster(name="ex", reuse=True)
        def test_marked(swarm_cluster, machine_cluster):
            assert swarm_cluster is machine_cluster
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
