"""machine.swarm and machine.cluster without engines: parsing, records, labels, naming, refusals."""
from __future__ import annotations

import pytest

from machine.api import Machines
from machine.errors import UsageError
from machine.swarm import (LEGACY_MESSAGE, SwarmRequest, _redact, label, parse_labels, record_of, validate_role)

pytestmark = pytest.mark.swarm


def test_parse_labels():
    assert parse_labels(["zone=a", "ssd", "k = v "]) == {"zone": "a", "ssd": "", "k": "v"}
    assert parse_labels({"a": 1}) == {"a": "1"}
    for bad in ("=x", "a b=c", "a,b=c"):
        with pytest.raises(UsageError):
            parse_labels([bad])


def test_roles():
    assert validate_role("Manager") == "manager"
    with pytest.raises(UsageError):
        validate_role("leader")


@pytest.mark.parametrize("kw, why", [
    (dict(manager=True, worker=True), "exclude each other"),
    (dict(worker=True), "needs --swarm-join"),
    (dict(join="m"), "need --swarm-manager or --swarm-worker"),
    (dict(advertise_addr="10.0.0.1"), "need --swarm-manager or --swarm-worker"),
])
def test_request_flag_errors(kw, why):
    with pytest.raises(UsageError) as e:
        SwarmRequest.from_flags(**kw)
    assert why in str(e.value)


def test_request_shapes():
    assert SwarmRequest.from_flags() is None
    r = SwarmRequest.from_flags(manager=True, labels=["a=b"])
    assert (r.role, r.join, r.labels) == ("manager", "", {"a": "b"})
    r = SwarmRequest.from_flags(worker=True, join="m1", advertise_addr="192.168.1.2")
    assert (r.role, r.join, r.advertise_addr) == ("worker", "m1", "192.168.1.2")


def test_request_check_reads_the_managers_record(store_path, fake_driver):
    api = Machines(store_path)
    api.create("m1", "fake")
    req = SwarmRequest.from_flags(worker=True, join="m1")
    with pytest.raises(UsageError) as e:
        req.check(api, "w1")
    assert "m1 is not a swarm manager" in str(e.value)
    with pytest.raises(UsageError):
        req.check(api, "m1")  # joining itself
    with pytest.raises(Exception):
        SwarmRequest.from_flags(worker=True, join="nosuch").check(api, "w1")
    h = api.load("m1")
    h.machine.extra["Swarm"] = {"Role": "manager", "NodeID": "n1", "ClusterID": "c", "Name": "m1"}
    api.store.save(h)
    req.check(api, "w1")  # now it is one


def test_record_and_ls_column(store_path, fake_driver):
    api = Machines(store_path)
    api.create("m1", "fake")
    api.create("w1", "fake")
    for name, rec in (("m1", {"Role": "manager", "Name": "c1", "ClusterID": "x", "NodeID": "a"}),
                      ("w1", {"Role": "worker", "Name": "c1", "ClusterID": "x", "NodeID": "b"})):
        h = api.load(name)
        h.machine.extra["Swarm"] = rec
        api.store.save(h)
    assert label(api.load("m1")) == "c1 (manager)" and label(api.load("w1")) == "c1"
    assert record_of(api.load("w1"))["NodeID"] == "b"
    rows = {r.name: r.swarm for r in api.ls(probe=False)}
    assert rows == {"m1": "c1 (manager)", "w1": "c1"}
    # our facts live in machine.json; docker-machine's config.json keeps its legacy SwarmOptions untouched
    import json

    cfg = json.loads((store_path / "machines" / "w1" / "config.json").read_text())
    assert cfg["HostOptions"]["SwarmOptions"]["IsSwarm"] is False
    assert "Swarm" in json.loads((store_path / "machines" / "w1" / "machine.json").read_text())["Machine"]


def test_tokens_are_redacted_from_messages():
    msg = "join failed: rpc error: token SWMTKN-1-abc123def-xyz789 rejected"
    assert "SWMTKN-1" not in _redact(msg) and "SWMTKN-…" in _redact(msg)


def test_legacy_message_names_the_flag():
    line = LEGACY_MESSAGE.format(flag="--swarm-master")
    assert "--swarm-master" in line and "--swarm-manager" in line and "\n" not in line


def test_rm_of_an_unreachable_member_drops_its_record(store_path, fake_driver, monkeypatch):
    """rm leaves the swarm first; a member whose engine does not answer (and with no manager
    reachable) still goes, and nothing of it stays behind."""
    api = Machines(store_path)
    api.create("w1", "fake")
    h = api.load("w1")
    h.machine.extra["Swarm"] = {"Role": "worker", "Name": "c1", "ClusterID": "x", "NodeID": "b"}
    api.store.save(h)
    steps = []
    api.rm("w1", on_step=steps.append)
    assert any("does not answer" in s for s in steps), steps
    assert api.store.names() == []


def test_last_manager_refused_unless_force(store_path, fake_driver):
    """By the records alone (its engine unreachable): the last manager of a swarm with workers stays."""
    api = Machines(store_path)
    for name, role in (("m1", "manager"), ("w1", "worker")):
        api.create(name, "fake")
        h = api.load(name)
        h.machine.extra["Swarm"] = {"Role": role, "Name": "c1", "ClusterID": "x", "NodeID": name}
        api.store.save(h)
    with pytest.raises(UsageError) as e:
        api.rm("m1")
    assert "last manager" in str(e.value) and "--force" in str(e.value)
    assert "m1" in api.store.names()
    api.rm("m1", force=True)
    assert api.store.names() == ["w1"]


# ---- clusters ---------------------------------------------------------------------------

def test_cluster_names_and_members(store_path, fake_driver):
    from machine.cluster import CLUSTER_LABEL, ROLE_LABEL, Cluster, member_name, parse_member, validate_cluster_name

    assert member_name("c1", "worker", 2) == "c1-worker-2"
    assert parse_member("c1", "c1-worker-12") == ("worker", 12)
    assert parse_member("c1", "c10-worker-1") is None
    with pytest.raises(UsageError):
        validate_cluster_name("bad name")
    api = Machines(store_path)
    for n, role in (("c1-manager-1", "manager"), ("c1-worker-2", "worker"), ("c1-worker-1", "worker"),
                    ("other", "")):
        api.create(n, "fake", labels={CLUSTER_LABEL: "c1", ROLE_LABEL: role} if role else {})
    c = Cluster("c1", api)
    assert c.machines == ["c1-manager-1", "c1-worker-1", "c1-worker-2"]
    assert c.managers == ["c1-manager-1"] and c.workers == ["c1-worker-1", "c1-worker-2"]
    assert Cluster.names(api) == ["c1"]
    removed = c.rm()
    assert removed == ["c1-worker-2", "c1-worker-1", "c1-manager-1"]  # workers first, managers last
    assert api.store.names() == ["other"] and not c.exists()


def test_cluster_network_chosen_for_drivers_with_one(store_path):
    from machine.cluster import Cluster

    c = Cluster("c9", Machines(store_path))
    opts, recorded = c._options("qemu", {"memory": "768"})
    assert opts == {"memory": "768", "network": "c9"} and recorded == opts
    opts, _ = c._options("qemu", {"network": "mine"})
    assert opts["network"] == "mine"
    opts, _ = c._options("generic", {"ip_address": "10.0.0.1"})
    assert "network" not in opts


def test_cluster_create_refuses_bad_shapes(store_path, fake_driver):
    from machine.cluster import Cluster

    with pytest.raises(UsageError):
        Cluster.create("c1", managers=0, driver="fake", api=Machines(store_path))
    with pytest.raises(UsageError):
        Cluster.create("c1", workers=-1, driver="fake", api=Machines(store_path))


def test_cluster_create_failure_removes_everything(store_path, flaky, monkeypatch):
    """One machine fails: the cluster's others are removed too, and the error names it."""
    import io

    from machine.batch import PlainProgress
    from machine.cluster import Cluster, ClusterFailed

    monkeypatch.setenv("MACHINE_TEST_FAIL", "c2-worker-1")
    api = Machines(store_path)
    with pytest.raises(ClusterFailed) as e:
        Cluster.create("c2", managers=1, workers=2, driver="flaky", api=api, progress=PlainProgress(io.StringIO()))
    assert "c2-worker-1" in str(e.value) and "no capacity left" in str(e.value)
    assert e.value.result is not None and [r.name for r in e.value.result.failed] == ["c2-worker-1"]
    assert api.store.names() == [] and flaky.resources == {}


def test_cli_verbs_answer_in_one_line(cli, store_path, fake_driver):
    from machine.cluster import CLUSTER_LABEL, ROLE_LABEL

    r = cli("swarm", "ls")
    assert r.code == 1 and r.err.strip() == "Error: no machine is a swarm manager: name one: machine swarm ls MANAGER"
    r = cli("swarm", "join", "a", "--manager", "b", "--as", "boss")
    assert r.code != 0 and "boss" in r.err
    r = cli("swarm", "promote", "nosuch")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    r = cli("cluster", "rm", "-y", "nosuch")
    assert r.code == 1 and "cluster 'nosuch' does not exist" in r.err
    assert cli("cluster", "ls").out.strip() == "NAME   MANAGERS   WORKERS   DRIVER   CONTEXT"
    api = Machines(store_path)
    api.create("k-manager-1", "fake", labels={CLUSTER_LABEL: "k", ROLE_LABEL: "manager"})
    assert cli("cluster", "ls", "-q").out.split() == ["k"]
    r = cli("cluster", "scale", "k", "--workers", "-1")
    assert r.code != 0 and "--workers" in r.err
    r = cli("cluster", "rm", "-y", "k")
    assert r.code == 0, r
    assert api.store.names() == []
