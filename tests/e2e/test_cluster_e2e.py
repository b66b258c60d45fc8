"""End-to-end: a swarm cluster of real QEMU VMs made by `machine cluster create` (issue 9).

Run (VMs share 2 cores with other engineers):
    flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_cluster_e2e.py -x -q

One cluster for the module (three 768 MiB VMs on a private vde network); the tests run
in order: nodes Ready and reaching each other over the private network → the pytest
plugin's example runs on this cluster (its fixture reuses it) → encrypted overlay +
replicated service answering through the routing mesh from every node → a worker's VM
killed, the service back to 3/3 on the others → `create -n 3 --swarm-worker` (bx-1…3)
with bx-2's VM killed mid-create: the others join, bx-2 is rolled back → `rm` of a worker
leaves the swarm first, the network's switch stays while members use it → `cluster scale`
adds a worker that joins → the last manager is refused → `cluster rm` leaves nothing (no
machine, network switch, context or process). Every command's output (some with --debug)
and every file of the store except the VMs' own disks are searched for join tokens.
About 18 minutes alone on this 2-core TCG machine.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from examples.test_cluster_fixture_example import test_replicated_service as _plugin_example

pytestmark = pytest.mark.vm

CLUSTER = "c1"
MEMORY = os.environ.get("MACHINE_TEST_CLUSTER_MEMORY", "768")
IMAGE = "busybox:e2e"
SERVICE = "web"
PORT = 8080
#: what every machine command printed, searched for join tokens at the end
LOGS: list[str] = []


class Env:
    def __init__(self, store: Path):
        self.store = store
        self.env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store / "docker"))
        for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "MACHINE_DEBUG"):
            self.env.pop(var, None)

    def machine(self, *args, timeout=1200, check=True):
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=self.env,
                           timeout=timeout)
        LOGS.append(p.stdout + p.stderr)
        print(f"[e2e] machine {' '.join(args)} -> {p.returncode} in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        if check:
            assert p.returncode == 0, f"machine {' '.join(args)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p

    def docker(self, *args, context=CLUSTER, timeout=300, check=True, input=None):
        p = subprocess.run(["docker", "--context", context, *args], capture_output=True, env=self.env,
                           timeout=timeout, input=input, text=input is None)
        out = p.stdout if isinstance(p.stdout, str) else p.stdout.decode(errors="replace")
        err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
        LOGS.append(out + err)
        if check:
            assert p.returncode == 0, f"docker --context {context} {' '.join(args)} failed: {err[-2000:]}"
        return out

    def ssh(self, name: str, cmd: str, timeout=120):
        return self.machine("ssh", name, "--", cmd, timeout=timeout, check=False)


def wait_for(what: str, fn, timeout: float, interval: float = 3.0):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def machine_cluster_store(tmp_path_factory):
    """The store of this module's cluster: the pytest plugin's fixtures find c1 there."""
    from harness.vm import vm_store

    return vm_store(tmp_path_factory, "clusterstore")


@pytest.fixture(scope="module")
def cl(engine_image, machine_cluster_store):
    e = Env(Path(machine_cluster_store))
    t0 = time.monotonic()
    try:
        e.machine("--debug", "cluster", "create", CLUSTER, "--managers", "1", "--workers", "2", "-d", "qemu",
                  "--qemu-memory", MEMORY, "--qemu-network-mode", "isolated")
        print(f"[e2e] cluster create took {time.monotonic() - t0:.0f}s", file=sys.stderr)
        yield e
    finally:
        r = e.machine("cluster", "rm", "-y", CLUSTER, check=False)
        if r.returncode != 0:  # whatever is left must not outlive the test
            for name in e.machine("ls", "-q", check=False).stdout.split():
                e.machine("rm", "-f", "-y", name, check=False)


def _nodes(e: Env) -> list[dict]:
    out = e.docker("node", "ls", "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_three_ready_nodes(cl):
    r = cl.machine("swarm", "ls", f"{CLUSTER}-manager-1", "--format", "json")
    rows = json.loads(r.stdout)
    assert sorted(x["Machine"] for x in rows) == [f"{CLUSTER}-manager-1", f"{CLUSTER}-worker-1", f"{CLUSTER}-worker-2"]
    assert all(x["State"] == "Ready" and x["Availability"] == "Active" for x in rows), rows
    assert [x["Role"] for x in rows].count("manager") == 1
    # the same through the docker CLI and the cluster's context
    nodes = _nodes(cl)
    assert len(nodes) == 3 and all(n["Status"] == "Ready" for n in nodes), nodes
    assert sum(1 for n in nodes if n["ManagerStatus"] == "Leader") == 1
    # swarm traffic goes over the private network: every node advertises a private address
    addrs = {x["Address"] for x in rows}
    assert all(a.startswith("192.168.") for a in addrs), addrs
    # the members reach each other on the private network (isolated guests have no other path)
    by_name = {x["Machine"]: x["Address"] for x in rows}
    r = cl.ssh(f"{CLUSTER}-manager-1", f"ping -c 2 -W 5 {by_name[f'{CLUSTER}-worker-2']}")
    assert r.returncode == 0, r.stdout + r.stderr
    r = cl.ssh(f"{CLUSTER}-worker-2", f"ping -c 2 -W 5 {by_name[f'{CLUSTER}-manager-1']}")
    assert r.returncode == 0, r.stdout + r.stderr
    ls = cl.machine("ls").stdout
    assert f"{CLUSTER} (manager)" in ls and ls.count(f" {CLUSTER} ") >= 2, ls
    assert cl.machine("cluster", "ls").stdout.split("\n")[1].split()[:3] == [CLUSTER, "1", "2"]


@pytest.fixture
def cluster_env(cl, monkeypatch):
    """This process sees the cluster's store and docker config, as a user's shell would."""
    monkeypatch.setenv("MACHINE_STORAGE_PATH", cl.env["MACHINE_STORAGE_PATH"])
    monkeypatch.setenv("DOCKER_CONFIG", cl.env["DOCKER_CONFIG"])


@pytest.mark.cluster(name=CLUSTER, reuse=True)
def test_the_plugin_example_runs_on_this_cluster(cl, cluster_env, swarm_cluster, busybox_rootfs):
    """tests/examples' test, given this cluster by the plugin's fixture (reuse: kept as it is)."""
    assert sorted(swarm_cluster.machines) == [f"{CLUSTER}-manager-1", f"{CLUSTER}-worker-1", f"{CLUSTER}-worker-2"]
    assert swarm_cluster.remove_on_exit is False
    try:
        _plugin_example(swarm_cluster, busybox_rootfs)
    finally:
        cl.docker("service", "rm", "hello", check=False)


def test_overlay_service_routing_mesh(cl, busybox_rootfs):
    members = [f"{CLUSTER}-manager-1", f"{CLUSTER}-worker-1", f"{CLUSTER}-worker-2"]
    for m in members:  # no registry: the image is brought to every node
        cl.docker("import", "-", IMAGE, context=m, input=busybox_rootfs)
    cl.docker("network", "create", "-d", "overlay", "--opt", "encrypted", "e2enet")
    assert cl.docker("network", "inspect", "e2enet", "--format", '{{index .Options "encrypted"}}').strip() == ""
    cl.docker("service", "create", "--detach", "--name", SERVICE, "--replicas", "3", "--network", "e2enet",
              "--publish", f"{PORT}:{PORT}", "--no-resolve-image", IMAGE, "sh", "-c",
              f"mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p {PORT} -h /www")
    wait_for("web 3/3", lambda: _replicas(cl) == "3/3", 300)
    # Where the tasks run is the scheduler's call (it spreads, but avoids a node where a task of
    # the service just failed): cross-node traffic only needs them on two nodes at least.
    containers = _task_containers(cl, members)  # container id (its hostname) -> node
    assert len(set(containers.values())) >= 2, (containers, cl.docker("service", "ps", SERVICE, "--no-trunc"))

    # the routing mesh: every node answers on the published port, from tasks on other nodes too
    seen = set()
    for m in members:
        replies = _mesh_requests(cl, m, 6)
        assert len(replies) == 6, (m, replies)
        seen |= set(replies)
    assert len(seen) >= 2, f"the mesh sent every request to one task: {seen}"
    assert seen <= set(containers), (seen, containers)

    # the encrypted overlay carries task-to-task traffic across nodes: the service's virtual IP on
    # e2enet, asked from a task on one node, balances over tasks on the others too. (By address,
    # with busybox nc: Debian's static busybox wget segfaults in a rootfs without glibc's NSS
    # files, even for an IP literal.)
    vips = json.loads(cl.docker("service", "inspect", SERVICE, "--format", "{{json .Endpoint.VirtualIPs}}"))
    net_id = cl.docker("network", "inspect", "e2enet", "--format", "{{.Id}}").strip()
    vip = next(v["Addr"].split("/")[0] for v in vips if v["NetworkID"] == net_id)
    cid, home = next(iter(containers.items()))
    names = set()
    for _ in range(6):
        reply = cl.docker("exec", cid, "busybox", "sh", "-c",
                          f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 10 {vip} {PORT}",
                          context=home)
        assert "200 OK" in reply, reply
        names.add(reply.strip().splitlines()[-1].strip())
    assert names <= set(containers), (names, containers)
    assert {containers[n] for n in names} - {home}, f"no reply from a task off {home}: {names} {containers}"


def test_worker_killed_service_heals(cl):
    victim = f"{CLUSTER}-worker-2"
    cl.machine("kill", victim)
    assert cl.machine("status", victim).stdout.strip() == "Stopped"
    wait_for(f"{victim} Down", lambda: any(n["Hostname"] == victim and n["Status"] == "Down" for n in _nodes(cl)), 180)

    seen = {}

    # Judged by the tasks: three desired and running, none on the dead node. (`service ls` then
    # says 4/3 on engine 20.10: the manager still counts the task the Down node last reported
    # as running.)
    def healed():
        tasks = _running_tasks(cl)
        seen.update(tasks=tasks)
        return len(tasks) == 3 and victim not in tasks.values()

    try:
        wait_for("web back to 3 tasks on the others", healed, 300)
    except AssertionError:  # say what the swarm showed, for the failure report
        ps = cl.docker("service", "ps", SERVICE, "--no-trunc", check=False)
        nodes = cl.docker("node", "ls", check=False)
        raise AssertionError(f"not healed after 300s: {seen}\n{ps}\n{nodes}") from None
    # and the mesh still answers from a surviving node
    assert len(_mesh_requests(cl, f"{CLUSTER}-worker-1", 3)) == 3


def test_batch_one_vm_killed_others_join(cl):
    """`create -n 3` joining the swarm; one VM dies mid-create: the others are Ready workers,
    it is rolled back (no record, VM, agent or lease left), the summary says which and why."""
    from machine.drivers.qemu.network import Network

    victim_dir = cl.store / "machines" / "bx-2"
    cmd = [sys.executable, "-m", "machine", "create", "-d", "qemu", "--qemu-memory", MEMORY,
           "--qemu-network-mode", "isolated", "--qemu-network", CLUSTER,
           "--swarm-worker", "--swarm-join", f"{CLUSTER}-manager-1", "--parallel", "3",
           "-n", "3", "--name-template", "bx-{n}"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cl.env)
    lines: list[str] = []
    waiting_ssh = threading.Event()

    def read_progress():  # plain progress lines, `(name) [12s] step`, as they come
        for line in p.stderr:
            lines.append(line)
            if line.startswith("(bx-2)") and line.rstrip().endswith("wait-ssh"):
                waiting_ssh.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    try:
        assert waiting_ssh.wait(900), "bx-2 never reached wait-ssh:\n" + "".join(lines[-40:])
        pid = int((victim_dir / "qemu.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)  # the VM dies while its create waits for SSH
        out = p.stdout.read()
        p.wait(timeout=1500)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reader.join(30)
    err = "".join(lines)
    LOGS.append(out + err)
    print(f"[e2e] machine create -n 3 (bx-2 killed) -> {p.returncode} in {time.monotonic() - t0:.0f}s",
          file=sys.stderr)
    assert p.returncode == 1, out + err[-3000:]
    summary = out.splitlines()
    assert summary[0].split() == ["NAME", "RESULT", "STEP", "TIME", "ERROR"], out
    rows = {line.split()[0]: line for line in summary[1:4]}
    assert rows["bx-1"].split()[1] == "Ready" and rows["bx-3"].split()[1] == "Ready", out
    assert rows["bx-2"].split()[1] == "Failed" and "QEMU process is gone" in rows["bx-2"], out
    assert "failed: bx-2" in summary[-1], out
    # rolled back: no record, folder, process (VM or port agent) or network lease
    assert cl.machine("ls", "-q").stdout.split().count("bx-2") == 0
    assert not victim_dir.exists()
    assert str(victim_dir) not in subprocess.run(["pgrep", "-af", "."], capture_output=True, text=True).stdout
    leases = Network(cl.store / "drivers" / "qemu", CLUSTER).leases()
    assert "bx-2" not in leases and {"bx-1", "bx-3"} <= set(leases), leases
    # the others joined as workers
    rows = {x["Machine"]: x for x in json.loads(cl.machine("swarm", "ls", "--format", "json").stdout)}
    for name in ("bx-1", "bx-3"):
        assert rows[name]["Role"] == "worker" and rows[name]["State"] == "Ready", rows


def test_scale_adds_a_worker_that_joins(cl):
    cl.machine("cluster", "scale", CLUSTER, "--workers", "3")
    new = f"{CLUSTER}-worker-3"
    rows = json.loads(cl.machine("swarm", "ls", "--format", "json").stdout)
    row = [x for x in rows if x["Machine"] == new]
    assert row and row[0]["State"] == "Ready" and row[0]["Role"] == "worker", rows


def test_rm_worker_leaves_swarm_first(cl):
    from machine.drivers.qemu.network import Network

    net = Network(cl.store / "drivers" / "qemu", CLUSTER)
    switch = net.switch_pid()
    assert switch
    r = cl.machine("rm", "-y", "bx-1", "bx-3")
    for gone in ("bx-1", "bx-3"):
        assert f"swarm leave {gone}" in r.stderr, r.stderr
        assert gone not in {n["Hostname"] for n in _nodes(cl)}
        assert gone not in cl.machine("ls", "-q").stdout.split()
    assert net.switch_pid() == switch, "the switch stays while the cluster's machines use it"


def test_last_manager_refused_while_workers_remain(cl):
    r = cl.machine("rm", "-y", f"{CLUSTER}-manager-1", check=False)
    assert r.returncode != 0 and "last manager" in r.stderr, r.stderr
    assert f"{CLUSTER}-manager-1" in cl.machine("ls", "-q").stdout.split()


def test_no_join_token_anywhere(cl):
    hits = [i for i, text in enumerate(LOGS) if "SWMTKN-" in text]
    assert not hits, f"a join token was printed: {[LOGS[i][:200] for i in hits]}"
    skip = {".qcow2", ".iso", ".raw", ".img"}
    checked = 0
    for path in cl.store.rglob("*"):
        rel = path.relative_to(cl.store).parts
        if rel[0] == "cache" or path.is_symlink() or not path.is_file() or path.suffix in skip:
            continue  # the image cache and the VMs' own disks are the engines' state, not the store's records
        checked += 1
        assert b"SWMTKN-" not in path.read_bytes(), f"join token in {path}"
    assert checked > 10


def test_cluster_rm_leaves_nothing(cl):
    cl.machine("cluster", "rm", "-y", CLUSTER)
    assert cl.machine("ls", "-q").stdout.split() == []
    assert cl.machine("cluster", "ls", "-q").stdout.split() == []
    assert not list((cl.store / "machines").iterdir()) if (cl.store / "machines").exists() else True
    assert not (cl.store / "drivers" / "qemu" / "networks" / CLUSTER).exists()
    assert str(cl.store) not in subprocess.run(["pgrep", "-af", "vde_switch"], capture_output=True, text=True).stdout
    ctx = subprocess.run(["docker", "context", "ls", "-q"], capture_output=True, text=True, env=cl.env).stdout.split()
    assert CLUSTER not in ctx and not any(c.startswith(f"{CLUSTER}-") for c in ctx), ctx
    ps = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True).stdout
    assert str(cl.store) not in ps


# ---- helpers ---------------------------------------------------------------------

def _mesh_requests(e: Env, member: str, n: int) -> list[str]:
    """n HTTP requests to the published port on `member`'s loopback, in one SSH session:
    the hostname of the task that answered each (the mesh balances them over the tasks)."""
    one = (f"exec 3<>/dev/tcp/127.0.0.1/{PORT} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && "
           "cat <&3 | awk 'NR==1{ok=($0 ~ / 200 /)} {last=$0} END{print (ok ? last : \"FAILED\")}'")
    r = e.ssh(member, f"for i in $(seq {n}); do ( {one} ) || echo FAILED; done")
    assert r.returncode == 0, (member, r.stdout[-500:], r.stderr[-500:])
    replies = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    assert "FAILED" not in replies, (member, replies)
    return replies

def _replicas(e: Env) -> str:
    out = e.docker("service", "ls", "--filter", f"name={SERVICE}", "--format", "{{.Replicas}}", check=False)
    return out.strip().split(" ")[0] if out.strip() else ""


def _task_containers(e: Env, members: list[str]) -> dict[str, str]:
    """The service's running containers on each member: short id (the hostname it answers
    with) -> node."""
    found = {}
    for m in members:
        out = e.docker("ps", "-q", "--filter", f"name={SERVICE}.", context=m)
        found.update({cid[:12]: m for cid in out.split()})
    return found


def _running_tasks(e: Env) -> dict[str, str]:
    out = e.docker("service", "ps", SERVICE, "--filter", "desired-state=running", "--format",
                   "{{.ID}} {{.Node}} {{.CurrentState}}", check=False)
    tasks = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "Running":
            tasks[parts[0]] = parts[1]
    return tasks
