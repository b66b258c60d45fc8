"""Swarm.init/join/promote/demote/leave/ls decisions, against a stand-in for the Docker SDK's
client (the engines themselves are the e2e tier's: tests/e2e/test_cluster_e2e.py).

The stand-in keeps one swarm's state the way dockerd reports it (info()["Swarm"], /swarm with
JoinTokens, /nodes), so the checks here are about what machine does with it: which engine it
asks, what it records, that the join token goes from the manager to the joining engine and
nowhere else (not the store, not a progress line)."""
from __future__ import annotations

import json

import pytest

import machine.swarm as swarm_mod
from machine.api import Machines
from machine.errors import MachineError, UsageError
from machine.swarm import Swarm

pytestmark = pytest.mark.swarm
TOKENS = {"Worker": "SWMTKN-1-secretworker", "Manager": "SWMTKN-1-secretmanager"}


class Cluster:
    def __init__(self):
        self.nodes = {}        # node id -> {"host", "role", "labels", "state"}
        self.cluster_id = "CLUSTER1"
        self.joins = []        # (host, token, remote, advertise)


class Node:
    def __init__(self, cl, nid):
        self.cl, self.id = cl, nid

    @property
    def attrs(self):
        n = self.cl.nodes[self.id]
        return {"ID": self.id, "Spec": {"Role": n["role"], "Availability": "active", "Labels": dict(n["labels"])},
                "Description": {"Hostname": n["host"], "Engine": {"EngineVersion": "20.10.24"}},
                "Status": {"State": n["state"], "Addr": "192.168.77.1"},
                "ManagerStatus": {"Leader": True, "Reachability": "reachable"} if n["role"] == "manager" else None}

    def update(self, spec):
        n = self.cl.nodes[self.id]
        n["role"], n["labels"] = spec["Role"], dict(spec.get("Labels") or {})

    def remove(self, force=False):
        self.cl.nodes.pop(self.id)


class Nodes:
    def __init__(self, cl):
        self.cl = cl

    def get(self, nid):
        import docker.errors

        if nid not in self.cl.nodes:
            raise docker.errors.NotFound("no such node")
        return Node(self.cl, nid)

    def list(self):
        return [Node(self.cl, n) for n in self.cl.nodes]


class SwarmObj:
    def __init__(self, engine):
        self.e = engine
        self.attrs = {"JoinTokens": dict(TOKENS)} if engine.is_manager() else {}

    def init(self, advertise_addr=None, listen_addr=None):
        nid = f"id-{self.e.host}"
        self.e.cl.nodes[nid] = {"host": self.e.host, "role": "manager", "labels": {}, "state": "ready"}
        self.e.node_id = nid

    def join(self, remote_addrs, join_token, listen_addr=None, advertise_addr=None):
        role = "manager" if join_token == TOKENS["Manager"] else "worker"
        assert join_token in TOKENS.values()
        self.e.cl.joins.append((self.e.host, join_token, tuple(remote_addrs), advertise_addr))
        nid = f"id-{self.e.host}"
        self.e.cl.nodes[nid] = {"host": self.e.host, "role": role, "labels": {}, "state": "ready"}
        self.e.node_id = nid

    def leave(self, force=False):
        if self.e.is_manager() and not force and len(self.e.cl.nodes) > 1:
            pass
        self.e.node_id = ""


class Engine:
    def __init__(self, cl, host):
        self.cl, self.host, self.node_id = cl, host, ""
        self.nodes = Nodes(cl)

    def is_manager(self):
        return bool(self.node_id) and self.cl.nodes.get(self.node_id, {}).get("role") == "manager"

    def info(self):
        if not self.node_id:
            return {"LiveRestoreEnabled": False, "Swarm": {"LocalNodeState": "inactive", "NodeID": ""}}
        s = {"LocalNodeState": "active", "NodeID": self.node_id, "ControlAvailable": self.is_manager(),
             "NodeAddr": "192.168.77.1"}
        if self.is_manager():
            s["Cluster"] = {"ID": self.cl.cluster_id}
            s["RemoteManagers"] = [{"NodeID": n, "Addr": f"addr-of-{v['host']}:2377"}
                                   for n, v in self.cl.nodes.items() if v["role"] == "manager"]
        return {"LiveRestoreEnabled": False, "Swarm": s}

    @property
    def swarm(self):
        return SwarmObj(self)


@pytest.fixture
def sw(store_path, fake_driver, monkeypatch):
    cl = Cluster()
    engines = {}
    api = Machines(store_path)
    for name in ("m1", "m2", "w1", "w2"):
        api.create(name, "fake")
        engines[name] = Engine(cl, name)
    monkeypatch.setattr(swarm_mod, "client_for", lambda host, timeout=60: engines[host.name])
    steps = []
    s = Swarm(api, on_step=steps.append)
    s.cl, s.engines, s.steps = cl, engines, steps
    return s


def test_init_join_record_and_ls(sw, store_path):
    rec = sw.init("m1", advertise_addr="192.168.77.10", swarm_name="c1")
    assert rec["Role"] == "manager" and rec["ClusterID"] == "CLUSTER1" and rec["Name"] == "c1"
    sw.join("w1", manager="m1", labels={"zone": "a"})
    sw.join("m2", manager="m1", role="manager")
    # the worker token went to w1's engine, the manager token to m2's, each with the managers' addresses
    assert [(h, t) for h, t, _, _ in sw.cl.joins] == [("w1", TOKENS["Worker"]), ("m2", TOKENS["Manager"])]
    assert sw.cl.joins[0][2] == ("addr-of-m1:2377",)
    assert sw.cl.nodes["id-w1"]["labels"] == {"zone": "a"}
    rows = sw.ls("m1")
    assert [(r.machine, r.role) for r in rows] == [("m1", "manager"), ("m2", "manager"), ("w1", "worker")]
    assert sw.api.load("w1").machine.extra["Swarm"]["Name"] == "c1"
    # the token is nowhere: not in the store, not in a progress line
    for path in store_path.rglob("*"):
        if path.is_file():
            assert b"SWMTKN-" not in path.read_bytes(), path
    assert not any("SWMTKN-" in s for s in sw.steps)


def test_join_needs_a_manager(sw):
    with pytest.raises(UsageError) as e:
        sw.join("w1", manager="w2")
    assert "w2 is not a swarm manager" in str(e.value)
    with pytest.raises(UsageError):
        sw.join("w1", manager="w1")


def test_join_again_is_a_no_op(sw):
    sw.init("m1")
    sw.join("w1", manager="m1")
    sw.join("w1", manager="m1")
    assert len(sw.cl.joins) == 1


def test_promote_demote(sw):
    sw.init("m1")
    sw.join("w1", manager="m1")
    sw.promote("w1")
    assert sw.cl.nodes["id-w1"]["role"] == "manager" and sw.api.load("w1").machine.extra["Swarm"]["Role"] == "manager"
    sw.demote("w1")
    assert sw.cl.nodes["id-w1"]["role"] == "worker"
    with pytest.raises(UsageError):
        sw.demote("m1")  # the last manager


def test_leave_worker_drops_its_node(sw):
    sw.init("m1")
    sw.join("w1", manager="m1")
    assert sw.leave("w1")
    assert "id-w1" not in sw.cl.nodes and "Swarm" not in sw.api.load("w1").machine.extra
    assert not sw.leave("w1")  # in no swarm now


def test_leave_manager_is_demoted_first(sw):
    sw.init("m1")
    sw.join("m2", manager="m1", role="manager")
    sw.leave("m2")
    assert any(s == "demote m2" for s in sw.steps)
    assert "id-m2" not in sw.cl.nodes


def test_rm_last_manager_with_workers(sw):
    sw.init("m1")
    sw.join("w1", manager="m1")
    with pytest.raises(UsageError) as e:
        sw.api.rm("m1")
    assert "last manager" in str(e.value)
    sw.api.rm("w1")  # leaves first
    assert "id-w1" not in sw.cl.nodes
    sw.api.rm("m1")  # alone now: it may go
    assert sw.api.store.names() == ["m2", "w2"]


def test_create_with_swarm_flags(sw):
    """`create --swarm-manager` then `--swarm-worker --swarm-join`: the swarm step after provisioning."""
    from machine.swarm import SwarmRequest

    sw.engines["n1"] = Engine(sw.cl, "n1")
    sw.engines["n2"] = Engine(sw.cl, "n2")
    h = sw.api.create("n1", "fake", swarm_mode=SwarmRequest.from_flags(manager=True))
    assert h.machine.extra["Swarm"]["Role"] == "manager" and "swarm" in h.machine.steps
    assert h.engine.live_restore is False
    h = sw.api.create("n2", "fake", swarm_mode=SwarmRequest.from_flags(worker=True, join="n1", labels=["a=b"]))
    assert h.machine.extra["Swarm"]["Role"] == "worker" and sw.cl.nodes["id-n2"]["labels"] == {"a": "b"}
    rows = {r.name: r.swarm for r in sw.api.ls(probe=False)}
    assert rows["n1"] == "n1 (manager)" and rows["n2"] == "n1"
    own = json.loads((sw.api.store.machine_dir("n2") / "machine.json").read_text())
    assert own["Machine"]["Swarm"]["ClusterID"] == "CLUSTER1"


def test_failed_swarm_step_rolls_back(sw, fake_driver):
    from machine.swarm import SwarmRequest

    sw.engines["n3"] = Engine(sw.cl, "n3")
    sw.init("m1")
    sw.cl.nodes["id-m1"]["role"] = "worker"  # the manager lost its role between check and join
    with pytest.raises(MachineError) as e:
        h = sw.api.load("m1")
        sw.api.create("n3", "fake", swarm_mode=SwarmRequest.from_flags(worker=True, join="m1"))
    assert "swarm" in str(e.value) and "nothing was left behind" in str(e.value)
    assert "n3" not in sw.api.store.names() and "vm-n3" not in fake_driver.resources
    del h
