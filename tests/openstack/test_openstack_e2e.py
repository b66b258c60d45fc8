"""End to end on the test cloud: `machine create -d openstack` goes on to provision a real engine.

The cloud is the real minimal OpenStack of the real tier (stack.py, session fixture in
conftest.py); its compute is Nova's fake virt driver, so a server is only a record with an
address on the flat network 127.10.0.0/24. The gateway (gateway.py) makes each such address
reach a real VM of the harness (QEMU, engine image): 127.10.0.X:22 and :2376 are forwarded
to the VM's loopback port forwards, the first connection to an address taking the next free
VM. So create runs for real: server ACTIVE → SSH to 127.10.0.X → host key pinned → OS facts
→ TLS on 2376 with 127.10.0.X in the server certificate → verified over TLS → docker context.

On each VM a user `ubuntu` with passwordless sudo holds the test user's key, so the loop's
`--openstack-ssh-user ubuntu` takes provisioning's non-root sudo path; root holds the key
too, for the create that keeps docker-machine's default user.

Costs here (2 cores, TCG): three VMs at once is the ceiling (~1 GB host memory each), so this
module sets MACHINE_TEST_MAX_VMS=3 for itself, waits until no other QEMU process runs (other
test sessions may hold VMs), boots its three in parallel and removes them at the end, pass or
fail. Needs root (the gateway binds port 22 on 127.10.0.50–99).

Run:  python3 -m pytest -m "openstack and vm" tests/openstack/test_openstack_e2e.py -s
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.gateway import DEFAULT_ADDRESSES, Gateway  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]
slow = [pytest.mark.openstack, pytest.mark.vm]

NODES = 3                      # the loop's three machines, one VM each
MAX_QEMU = int(os.environ.get("MACHINE_TEST_MAX_QEMU", "3"))   # QEMU processes on this host, all sessions
VM_WAIT = float(os.environ.get("MACHINE_TEST_VM_WAIT", "600"))  # seconds to wait for other VMs to go
VM_MEMORY = 768
PROJECT = "docker"             # the loop's --openstack-tenant-name
OS_USER = "dockeruser"
USERKEYNAME = "e2e-userkey"    # the loop's $userkeyname
MYNAME = "e2e"                 # the loop's $myname
LOOP_NAMES = [f"docker{MYNAME}-node-{i}" for i in (1, 2, 3)]
CREATE_TIMEOUT = 900           # seconds per `machine create` (SSH, facts, TLS, verify)


# ---- reporting (shown with output capture on, like the stack's start-up cost) -------------

@pytest.fixture(scope="module")
def say(pytestconfig):
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(line: str) -> None:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print(f"openstack e2e: {line}", file=sys.stderr, flush=True)
        else:
            print(f"openstack e2e: {line}", file=sys.stderr, flush=True)
    return say


# ---- the gateway on its own (no cloud, no VM: runs in the fast tier) -----------------------

def test_gateway_assigns_forwards_and_releases():
    import socket

    def echo_server(tag: bytes):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=echo, args=(c,), daemon=True).start()

        def echo(c):
            with c:
                c.sendall(tag)
                while True:
                    data = c.recv(65536)
                    if not data:
                        break
                    c.sendall(data)
                c.shutdown(socket.SHUT_WR)
        threading.Thread(target=serve, daemon=True).start()
        return srv

    servers = {(i, p): echo_server(f"{i}{p}".encode()) for i in range(2) for p in (1, 2)}
    targets = [{41022: servers[(i, 1)].getsockname()[1], 41376: servers[(i, 2)].getsockname()[1]}
               for i in range(2)]
    addresses = ["127.10.0.50", "127.10.0.51", "127.10.0.52"]

    def talk(address, port, payload=b"x" * 200_000):
        with socket.create_connection((address, port), 5) as c:
            c.settimeout(5)
            tag = c.recv(2)
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)   # half-close reaches the target; its answer still comes back
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        return tag, got == payload

    with pytest.raises(ValueError):
        Gateway(targets, addresses=["10.0.0.1"])
    try:
        with Gateway(targets, addresses=addresses, ports=(41022, 41376)) as gw:
            assert talk("127.10.0.51", 41376) == (b"02", True)    # first contact: target 0
            assert talk("127.10.0.51", 41022) == (b"01", True)
            assert talk("127.10.0.50", 41022) == (b"11", True)    # next address: target 1
            assert gw.assignments == {"127.10.0.51": 0, "127.10.0.50": 1}
            with socket.create_connection(("127.10.0.52", 41022), 5) as c:   # no target left
                c.settimeout(5)
                assert c.recv(10) == b""
            gw.release("127.10.0.51")
            assert talk("127.10.0.52", 41022) == (b"01", True)
            assert gw.connections[("127.10.0.51", 41022)] == 1
        with pytest.raises(OSError):
            socket.create_connection(("127.10.0.50", 41022), 2)
    finally:
        for s in servers.values():
            s.close()


# ---- VMs ----------------------------------------------------------------------------------

def _qemu_pids() -> list[int]:
    """Every QEMU process on the host (any session's), by its executable, not its title."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv0 = (d / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if os.path.basename(argv0).startswith(b"qemu-system-"):
                out.append(int(d.name))
    return out


def _wait_for_vm_room(needed: int, say) -> None:
    from harness.vm import VMPool

    VMPool.park_standby_everywhere()  # this session's shared VM is stopped, not waited for
    t0 = time.monotonic()
    deadline = t0 + VM_WAIT
    said = False
    while True:
        others = _qemu_pids()
        if len(others) + needed <= MAX_QEMU:
            if said:
                say(f"waited {time.monotonic() - t0:.0f}s for other VMs to go")
            return
        if time.monotonic() > deadline:
            pytest.skip(f"{len(others)} other QEMU process(es) still running after {VM_WAIT:.0f}s; this test "
                        f"needs {needed} VMs and the host holds {MAX_QEMU} (MACHINE_TEST_MAX_QEMU)")
        if not said:
            say(f"waiting for {len(others)} other QEMU process(es) to finish (PIDs {others}); "
                f"need room for {needed} VMs")
            said = True
        time.sleep(10)


@pytest.fixture(scope="module")
def user_home(tmp_path_factory):
    """The loop runs in the user's home: .ssh/id_rsa is their key (the loop's relative path)."""
    home = tmp_path_factory.mktemp("loop-home")
    (home / ".ssh").mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "loop-user",
                    "-f", str(home / ".ssh" / "id_rsa")], check=True)
    return home


@pytest.fixture(scope="module")
def vms(user_home, tmp_path_factory, say):
    """Three VMs (engine image) booted in parallel, each with user ubuntu (sudo) holding the user's key."""
    from harness.vm import VMPool, ensure_image, vm_capable, vm_store, wait_ssh_parallel

    reason = vm_capable()
    if reason:
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.skip("the gateway binds port 22 on 127.10.0.50-99: needs root")
    ensure_image(engine=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("MACHINE_TEST_MAX_VMS", str(NODES))   # this module's budget, not the session's
    pool = VMPool(vm_store(tmp_path_factory, "os-e2e-vms"), max_vms=NODES)
    try:
        _wait_for_vm_room(NODES, say)
        t0 = time.monotonic()
        machines = [pool.create(f"os-vm-{i}", wait=False, memory=VM_MEMORY) for i in range(1, NODES + 1)]
        wait_ssh_parallel(machines)
        say(f"{NODES} VMs booted in parallel in {time.monotonic() - t0:.0f}s "
            f"(ssh after {', '.join(f'{vm.boot_seconds:.0f}s' for vm in machines)})")
        public = (user_home / ".ssh" / "id_rsa.pub").read_text().strip()
        script = f"""set -e
id ubuntu >/dev/null 2>&1 || useradd -m -s /bin/bash ubuntu
printf 'ubuntu ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/90-ubuntu
chmod 0440 /etc/sudoers.d/90-ubuntu
install -d -m 0700 -o ubuntu -g ubuntu /home/ubuntu/.ssh
printf '%s\\n' '{public}' > /home/ubuntu/.ssh/authorized_keys
chown ubuntu:ubuntu /home/ubuntu/.ssh/authorized_keys
chmod 0600 /home/ubuntu/.ssh/authorized_keys
grep -qxF '{public}' /root/.ssh/authorized_keys || printf '%s\\n' '{public}' >> /root/.ssh/authorized_keys
sudo -n -u ubuntu sudo -n true
"""
        for vm in machines:
            rc, out, err = vm.run(script)
            assert rc == 0, f"preparing {vm.name} failed: {out}{err}"
        yield machines
    finally:
        t0 = time.monotonic()
        pool.close()
        mp.undo()
        say(f"VMs removed in {time.monotonic() - t0:.0f}s")


@pytest.fixture(scope="module")
def gateway(vms, say):
    targets = [{22: vm.driver.config.ssh_port, 2376: vm.driver.config.engine_port} for vm in vms]
    gw = Gateway(targets).start()
    say(f"gateway: {DEFAULT_ADDRESSES[0]}-{DEFAULT_ADDRESSES[-1]} ports 22, 2376 -> "
        + ", ".join(f"{vm.name} (127.0.0.1:{t[22]}, :{t[2376]})" for vm, t in zip(vms, targets)))
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def gw(gateway):
    """The gateway, with every address released after the test (its servers are gone)."""
    gateway.release()
    yield gateway
    gateway.release()


# ---- the users' project on the test cloud ---------------------------------------------------

def _user_conn(stack, password: str):
    import openstack

    return openstack.connect(auth_url=stack.auth_url, username=OS_USER, password=password, project_name=PROJECT,
                             user_domain_id="default", project_domain_id="default", region_name="RegionOne",
                             load_yaml_config=False, load_envvars=False)


@pytest.fixture(scope="module")
def cloud(stack, user_home):
    """Project `docker`, user with a password and the member role, security group `docker`,
    the user's key pair: made through the API, removed (with anything left in it) at the end."""
    adm = stack.connect("stack-admin")
    idn = adm.identity
    password = "loop-" + secrets.token_hex(12)
    project = idn.find_project(PROJECT, domain_id="default") or idn.create_project(
        name=PROJECT, domain_id="default", description="the users' project (machine e2e)")
    user = idn.find_user(OS_USER, domain_id="default")
    if user is None:
        user = idn.create_user(name=OS_USER, password=password, domain_id="default", default_project_id=project.id)
    else:   # left by an interrupted run on a reused stack
        user = idn.update_user(user, password=password)
    idn.assign_project_role_to_user(project, user, idn.find_role("member"))
    conn = _user_conn(stack, password)
    conn.authorize()
    group = conn.network.find_security_group("docker", project_id=project.id) \
        or conn.network.create_security_group(name="docker", description="the users' group for docker hosts")
    for port in (22, 2376):
        try:
            conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                    ethertype="IPv4", protocol="tcp", port_range_min=port,
                                                    port_range_max=port, remote_ip_prefix="0.0.0.0/0")
        except Exception as e:  # noqa: BLE001 - 409: the rule is there already (reused project)
            if "409" not in str(e) and "already exists" not in str(e).lower():
                raise
    if conn.compute.find_keypair(USERKEYNAME, ignore_missing=True) is None:
        conn.compute.create_keypair(name=USERKEYNAME,
                                    public_key=(user_home / ".ssh" / "id_rsa.pub").read_text().strip())
    try:
        yield SimpleNamespace(conn=conn, admin=adm, project=project, user=user, password=password,
                              auth_url=stack.auth_url)
    finally:
        _sweep_project(adm, conn, project)
        conn.close()
        idn.delete_user(user, ignore_missing=True)
        idn.delete_project(project, ignore_missing=True)


def _sweep_project(adm, conn, project) -> None:
    for s in list(adm.compute.servers(all_projects=True, project_id=project.id)):
        adm.compute.delete_server(s, ignore_missing=True)
        try:
            adm.compute.wait_for_delete(s, wait=120)
        except Exception:  # noqa: BLE001 - best effort
            pass
    for p in list(adm.network.ports(project_id=project.id)):
        adm.network.delete_port(p, ignore_missing=True)
    try:
        conn.compute.delete_keypair(USERKEYNAME, ignore_missing=True)
        for kp in list(conn.compute.keypairs()):
            conn.compute.delete_keypair(kp, ignore_missing=True)
    except Exception:  # noqa: BLE001 - the user may be gone already
        pass
    for g in list(adm.network.security_groups(project_id=project.id)):
        adm.network.delete_security_group(g, ignore_missing=True)


def inventory(c, project_id: str) -> dict:
    return {
        "servers": sorted(f"{s.name} {s.id}" for s in c.compute.servers()),
        "ports": sorted(p.id for p in c.network.ports(project_id=project_id)),
        "secgroups": sorted(g.name for g in c.network.security_groups(project_id=project_id)),
        "keypairs": sorted(k.name for k in c.compute.keypairs()),
    }


def _wait_inventory(c, project_id: str, want: dict, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:   # Neutron may still be finishing the port of a deleted server
        now = inventory(c, project_id)
        if now == want or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


# ---- running what users run ------------------------------------------------------------------

@pytest.fixture
def user_env(user_home, isolated_env):
    """The user's shell: the installed console scripts first on PATH, no OS_* variables (the
    password is typed as a flag, then kept by machine), its own store and docker config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(user_home), MACHINE_STORAGE_PATH=str(isolated_env),
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    assert shutil.which("machine", path=env["PATH"]), "the `machine` console script is not installed (pip install -e .)"
    assert shutil.which("docker", path=env["PATH"]), "the docker CLI is not installed"
    return env


def run(argv, env, timeout=300, cwd=None):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _docker_version(env, context: str) -> subprocess.CompletedProcess:
    return run(["docker", "--context", context, "version"], env, timeout=60)


def _assert_no_password(roots, password: str) -> list[Path]:
    """No file under roots holds the password, except the machines' 0600 credentials.json."""
    kept = []
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_symlink() or not p.is_file():
                continue
            if password.encode() in p.read_bytes():
                assert p.name == "credentials.json", f"the password is in {p}"
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, f"{p} is not 0600"
                kept.append(p)
    return kept


@pytest.mark.openstack
@pytest.mark.vm
def test_users_loop_creates_three_working_machines(stack, cloud, vms, gw, user_env, user_home, isolated_env, say):
    """The users' docker-machine loop, unchanged but for `machine`, through a real bash."""
    store = isolated_env
    loop = ("for instance in 1 2 3; do machine create --driver openstack "
            f"--openstack-username {OS_USER} --openstack-password {cloud.password} --openstack-tenant-name docker "
            f"--openstack-auth-url {cloud.auth_url} --openstack-flavor-name m1.tiny --openstack-image-name fake-img "
            "--openstack-ssh-user ubuntu --openstack-sec-groups default,docker --openstack-keypair-name $userkeyname "
            "--openstack-private-key-file .ssh/id_rsa docker$myname-node-$instance; done")
    # Each command's start time via xtrace, so the loop itself stays as users type it.
    script = (f"userkeyname={USERKEYNAME}\nmyname={MYNAME}\ncd \"$HOME\"\n"
              "PS4='+ @${EPOCHREALTIME} '\nset -x\n" + loop + "\n: loop-done\n")
    before = inventory(cloud.conn, cloud.project.id)
    assert before["servers"] == [] and before["keypairs"] == [USERKEYNAME], before
    t0 = time.monotonic()
    try:
        p = run(["bash", "-c", script], user_env, timeout=CREATE_TIMEOUT * NODES, cwd=str(user_home))
        total = time.monotonic() - t0
        marks = [(float(m.group(1)), m.group(2)) for m in re.finditer(
            r"^\++ @(\d+\.\d+) (machine create .*? (\S+)|: loop-done)$", p.stderr, re.M)]
        starts = [(t, line.rsplit(" ", 1)[-1]) for t, line in marks]
        timings = {name: round(starts[i + 1][0] - t, 1) for i, (t, name) in enumerate(starts[:-1])}
        say(f"loop: {', '.join(f'{n} {s:.0f}s' for n, s in timings.items())}; total {total:.0f}s")
        for n in LOOP_NAMES:
            assert n in timings, f"the loop did not run `machine create … {n}`:\n{_tail(p.stderr)}"
        # (a bash for-loop's status is its last command's: every machine is checked below)
        assert p.returncode == 0, _tail(p.stderr.replace(cloud.password, "***"))
        assert cloud.password not in p.stdout
        progress = [ln for ln in p.stderr.splitlines() if not ln.startswith("+")]
        assert not any(cloud.password in ln for ln in progress), "create printed the password"
        assert sum("credentials kept in the" in ln for ln in progress) == NODES, "\n".join(progress)

        # every server reached its own VM through its own address
        ips = {}
        for n in LOOP_NAMES:
            r = run(["machine", "ip", n], user_env, timeout=60)
            assert r.returncode == 0, r.stderr
            ips[n] = r.stdout.strip()
            assert ips[n] in DEFAULT_ADDRESSES
        assert len(set(ips.values())) == NODES
        assert sorted(gw.assignments) == sorted(ips.values()) and len(set(gw.assignments.values())) == NODES

        # machine ls: three Running with a DOCKER version
        r = run(["machine", "ls"], user_env, timeout=120)
        assert r.returncode == 0, r.stderr
        say("machine ls:\n" + r.stdout.rstrip())
        rows = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:] if ln.strip()}
        assert sorted(rows) == sorted(LOOP_NAMES), r.stdout
        for n in LOOP_NAMES:
            cells = rows[n].split()
            assert "openstack" in cells and "Running" in cells, rows[n]
            assert f"tcp://{ips[n]}:2376" in cells, rows[n]
            assert any(re.fullmatch(r"v\d+\.\d+\.\d+\S*", c) for c in cells), f"no DOCKER version: {rows[n]}"

        # the host's real docker CLI through each machine's context answers, from its own VM
        hostnames = {}
        for n in LOOP_NAMES:
            r = _docker_version(user_env, n)
            assert r.returncode == 0, f"docker --context {n} version: {r.stderr}"
            assert re.search(r"^Server:", r.stdout, re.M) and "Engine:" in r.stdout, r.stdout
            r = run(["docker", "--context", n, "info", "--format", "{{.Name}}"], user_env, timeout=60)
            assert r.returncode == 0, r.stderr
            hostnames[n] = r.stdout.strip()
        assert sorted(hostnames.values()) == sorted(vm.name for vm in vms), hostnames

        # the non-root path: SSH as ubuntu, engine configured through sudo
        for n in LOOP_NAMES:
            r = run(["machine", "ssh", n, "--", "id", "-un"], user_env, timeout=60)
            assert r.returncode == 0 and r.stdout.strip() == "ubuntu", r.stderr

        # the password: in no config.json, no file of the store or docker config but the 0600 file
        for n in LOOP_NAMES:
            text = (store / "machines" / n / "config.json").read_text()
            assert cloud.password not in text
            assert '"SSHUser": "ubuntu"' in text and f'"KeyPairName": "{USERKEYNAME}"' in text
            # what rm will delete is in the record: our port and server, not the user's key pair or groups
            record = json.loads((store / "machines" / n / "machine.json").read_text())["Machine"]
            assert sorted(e["kind"] for e in record["Journal"]) == ["port", "server"], record["Journal"]
            say(f"{n} steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in record.get("StepTimes", {}).items()))
        kept = _assert_no_password([store, Path(user_env["DOCKER_CONFIG"])], cloud.password)
        assert sorted(p.parent.name for p in kept) == sorted(LOOP_NAMES), kept
        server_ids = [s.split()[1] for s in inventory(cloud.conn, cloud.project.id)["servers"]]
        assert len(server_ids) == NODES

        # rm without the password flags (and no OS_PASSWORD): the kept credentials are used
        assert not any(k.startswith("OS_") for k in user_env)
        for n in LOOP_NAMES:
            t = time.monotonic()
            r = run(["machine", "rm", "-y", n], user_env, timeout=600)
            assert r.returncode == 0, f"machine rm -y {n}: {r.stderr}"
            say(f"rm {n}: {time.monotonic() - t:.0f}s")
            assert not (store / "machines" / n).exists()
            assert _docker_version(user_env, n).returncode != 0   # its context is gone
        after = _wait_inventory(cloud.conn, cloud.project.id, before)
        assert after == before, f"left behind: {after} (before: {before})"
        r = run(["machine", "ls", "-q"], user_env, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == ""
    finally:
        _force_rm(user_env, store, LOOP_NAMES)


def _force_rm(env, store: Path, names) -> None:
    for n in names:
        if (store / "machines" / n).exists():
            run(["machine", "rm", "-y", "-f", n], env, timeout=600)


@pytest.mark.openstack
@pytest.mark.vm
def test_create_with_defaults_provisions_and_rm_leaves_nothing(stack, cloud, vms, gw, user_env, user_home,
                                                               isolated_env, say):
    """docker-machine's defaults: SSH as root, a security group made by machine, the key pair
    imported from --openstack-private-key-file; then rm removes all of it."""
    store = isolated_env
    name = "os-single"
    before = inventory(cloud.conn, cloud.project.id)
    args = ["machine", "create", "-d", "openstack", "--openstack-auth-url", cloud.auth_url,
            "--openstack-username", OS_USER, "--openstack-password", cloud.password,
            "--openstack-tenant-name", PROJECT, "--openstack-flavor-name", "m1.tiny",
            "--openstack-image-name", "fake-img", "--openstack-net-name", "public-flat",
            "--openstack-private-key-file", str(user_home / ".ssh" / "id_rsa"), name]
    try:
        t0 = time.monotonic()
        r = run(args, user_env, timeout=CREATE_TIMEOUT)
        say(f"create {name} (root, own security group and key pair): {time.monotonic() - t0:.0f}s")
        assert r.returncode == 0, _tail(r.stderr)
        mid = inventory(cloud.conn, cloud.project.id)
        assert f"machine-{name}" in mid["secgroups"] and name in mid["keypairs"]
        journal = json.loads((store / "machines" / name / "machine.json").read_text())["Machine"]["Journal"]
        assert sorted(e["kind"] for e in journal) == ["keypair", "port", "secgroup", "server"], journal
        host_ip = run(["machine", "ip", name], user_env).stdout.strip()
        assert host_ip in gw.assignments
        r = _docker_version(user_env, name)
        assert r.returncode == 0 and "Engine:" in r.stdout, r.stderr
        r = run(["machine", "ssh", name, "--", "id", "-un"], user_env, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "root", r.stderr
        r = run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                 str(store / "machines" / name / "server.pem")], user_env, timeout=30)
        assert r.returncode == 0 and f"IP Address:{host_ip}" in r.stdout, r.stdout + r.stderr
        _assert_no_password([store, Path(user_env["DOCKER_CONFIG"])], cloud.password)

        r = run(["machine", "rm", "-y", name], user_env, timeout=600)
        assert r.returncode == 0, r.stderr
        after = _wait_inventory(cloud.conn, cloud.project.id, before)
        assert after == before, f"left behind: {after} (before: {before})"
    finally:
        _force_rm(user_env, store, [name])
