"""End-to-end on real qemu VMs: published ports (TCP and UDP) reachable on 127.0.0.1 and gone with
their container, a shared host folder read by a container through a bind mount, and outbound
network: a NAT guest reaches a server on a test-made network namespace's loopback, an isolated
guest does not.

One VM (created with the CLI, isolated, with a share) serves the ports and share tests; the
outbound test boots two small VMs in parallel inside a network namespace that has only `lo`.
Containers come from busybox-static (`docker import`), no registry.

Run: flock /tmp/machine-vm.lock python3 -m pytest -m vm tests/e2e/test_qemu_features.py -x -q
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from harness.vm import vm_store

pytestmark = pytest.mark.vm
TESTS = Path(__file__).resolve().parents[1]
NAME = "dev1"


def _port_busy(port: int, udp: bool = False) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        if not udp:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def _wait(pred, timeout: float, step: float = 0.1):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


class Dev:
    def __init__(self, store: Path, share: Path):
        self.store = store
        self.share = share
        self.env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store / "docker"))

    def machine(self, *args, timeout=900):
        return subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def docker(self, *args, input=None, timeout=180):
        return subprocess.run(["docker", "--context", NAME, *args], capture_output=True, text=True if input is None
                              else False, input=input, env=self.env, timeout=timeout)

    def ports(self) -> list[dict]:
        r = self.machine("ports", NAME, "--format", "json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture(scope="module")
def dev(engine_image, busybox_rootfs, tmp_path_factory):
    store = vm_store(tmp_path_factory, "featstore")
    share = Path(tmp_path_factory.mktemp("shared"))
    d = Dev(store, share)
    try:
        t0 = time.monotonic()
        r = d.machine("create", "-d", "qemu", "--qemu-network-mode", "isolated", "--qemu-share", str(share), NAME)
        assert r.returncode == 0, r.stderr[-3000:]
        print(f"create with a share: {time.monotonic() - t0:.0f}s", file=sys.stderr)
        r = d.docker("import", "-", "busybox:local", input=busybox_rootfs)
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        d.machine("rm", "-y", "-f", NAME)
    assert not (store / "machines" / NAME).exists()


def test_machine_ip_is_where_published_ports_are(dev):
    r = dev.machine("ip", NAME)
    assert r.returncode == 0 and r.stdout.strip() == "127.0.0.1"
    cfg = json.loads((dev.store / "machines" / NAME / "config.json").read_text())["Driver"]
    assert cfg["NetworkMode"] == "isolated" and cfg["Shares"] == [str(dev.share)]


def test_published_tcp_port_answers_on_loopback_and_goes_with_its_container(dev):
    want = 8080
    expect_same = not _port_busy(want)
    t0 = time.monotonic()
    r = dev.docker("run", "-d", "--name", "web", "-p", f"{want}:80", "busybox:local", "sh", "-c",
                   "busybox mkdir -p /www && echo hello-from-the-vm > /www/index.html && "
                   "exec busybox httpd -f -p 80 -h /www")
    assert r.returncode == 0, r.stderr
    t_run = time.monotonic()
    ports = _wait(lambda: [p for p in dev.ports() if p["guest_port"] == want], 20, 0.2)
    assert ports, dev.ports()
    host_port = ports[0]["host_port"]
    if expect_same:
        assert host_port == want
    assert ports[0]["proto"] == "tcp" and ports[0]["containers"] == ["web"]
    r = dev.machine("ls", "--filter", f"name=^{NAME}$")   # ls says where it is reachable
    header, row = r.stdout.splitlines()
    assert header.split()[-1] == "PORTS" and row.endswith(f"127.0.0.1:{host_port}->{want}/tcp"), r.stdout

    def fetch():
        try:
            out = subprocess.run(["curl", "-fsS", "--max-time", "3", f"http://127.0.0.1:{host_port}/"],
                                 capture_output=True, text=True, timeout=10)
            return out.stdout if out.returncode == 0 else None
        except subprocess.TimeoutExpired:
            return None
    body = _wait(fetch, 30, 0.2)
    answered = time.monotonic()
    assert body and "hello-from-the-vm" in body
    print(f"curl answered {answered - t_run:.1f}s after docker run returned "
          f"({t_run - t0:.1f}s for docker run itself)", file=sys.stderr)
    assert answered - t_run < 10

    r = dev.docker("rm", "-f", "web")
    assert r.returncode == 0, r.stderr
    t_rm = time.monotonic()
    assert _wait(lambda: not _port_busy(host_port), 15), "the forward is removed after docker rm -f"
    print(f"forward gone {time.monotonic() - t_rm:.1f}s after docker rm -f", file=sys.stderr)
    assert not [p for p in dev.ports() if p["guest_port"] == want]


UDP_SERVER = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('',5353))\n"
              "while True:\n d,a=s.recvfrom(512)\n print('got:'+d.decode(),flush=True)\n s.sendto(b'echo:'+d,a)\n")


def test_published_udp_port_round_trip(dev):
    want = 5353
    # busybox has no UDP server: the container runs the guest's own python3 through read-only mounts
    r = dev.docker("run", "-d", "--name", "udp", "-p", f"{want}:{want}/udp",
                   "-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro",
                   "busybox:local", "/usr/bin/python3", "-c", UDP_SERVER)
    assert r.returncode == 0, r.stderr
    ports = _wait(lambda: [p for p in dev.ports() if p["proto"] == "udp" and p["guest_port"] == want], 20, 0.2)
    assert ports, dev.ports()
    host_port = ports[0]["host_port"]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    got = None
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and got is None:
            s.sendto(b"ping", ("127.0.0.1", host_port))
            try:
                got = s.recv(512)
            except socket.timeout:
                pass
    finally:
        s.close()
    logs = dev.docker("logs", "udp")
    # host -> container delivery; an isolated guest's UDP replies are dropped by QEMU's user-mode
    # network itself (libslirp's udp_input drops every guest datagram when restrict=on), so the
    # echo comes back only with --qemu-network-mode nat
    assert "got:ping" in logs.stdout, logs.stderr
    nat = json.loads((dev.store / "machines" / NAME / "config.json").read_text())["Driver"]["NetworkMode"] == "nat"
    assert got == (b"echo:ping" if nat else None), got
    assert dev.docker("rm", "-f", "udp").returncode == 0
    assert _wait(lambda: not [p for p in dev.ports() if p["proto"] == "udp"], 15)
    assert _wait(lambda: not _port_busy(host_port, udp=True), 10)


def test_shared_folder_file_read_by_a_container_through_a_bind_mount(dev):
    token = uuid.uuid4().hex
    (dev.share / "hello.txt").write_text(token + "\n")     # written after the VM booted
    r = dev.docker("run", "--rm", "-v", f"{dev.share}:/data", "busybox:local", "cat", "/data/hello.txt")
    assert r.returncode == 0 and r.stdout.strip() == token, r.stderr
    # and the other way: a container writes, the host reads
    r = dev.docker("run", "--rm", "-v", f"{dev.share}:/data", "busybox:local", "sh", "-c",
                   "echo from-container > /data/back.txt")
    assert r.returncode == 0, r.stderr
    assert (dev.share / "back.txt").read_text() == "from-container\n"


def test_ports_follow_stop_and_start(dev):
    r = dev.docker("run", "-d", "--restart", "always", "--name", "web2", "-p", "18081:80", "busybox:local", "sh",
                   "-c", "busybox mkdir -p /w && echo again > /w/index.html && exec busybox httpd -f -p 80 -h /w")
    assert r.returncode == 0, r.stderr
    assert _wait(lambda: [p for p in dev.ports() if p["guest_port"] == 18081], 20, 0.2)
    assert dev.machine("stop", NAME).returncode == 0
    r = dev.machine("ports", NAME)
    assert "not running" in r.stderr and _wait(lambda: not _port_busy(18081), 10)
    r = dev.machine("start", NAME)
    assert r.returncode == 0, r.stderr[-2000:]
    ports = _wait(lambda: [p for p in dev.ports() if p["guest_port"] == 18081], 60, 0.5)
    assert ports, "a restarted container's port is forwarded again after start"
    out = subprocess.run(["curl", "-fsS", "--max-time", "5", f"http://127.0.0.1:{ports[0]['host_port']}/"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "again", out.stderr
    assert dev.docker("rm", "-f", "web2").returncode == 0


# ---- outbound network, in a network namespace with only a loopback ------------------------------

NETNS_HELPER = textwrap.dedent("""
    import base64, functools, json, socket, sys, threading, time
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    sys.path.insert(0, sys.argv[1])
    from harness.vm import VMPool, wait_ssh_parallel
    from machine.drivers.qemu.agent import Forwarder, _qmp_hmp

    def udp_round_trip(vm):
        # A UDP echo server in the guest, published on the namespace's loopback by the port agent's
        # Forwarder (QMP hostfwd_add, as for a container's -p 5353:5353/udp); then a datagram each way.
        vm.run("echo " + sys.argv[4] + " | base64 -d > /tmp/udp.py && (nohup python3 /tmp/udp.py "
               ">/dev/null 2>&1 &)", timeout=30)
        time.sleep(1)
        fwd = Forwarder(_qmp_hmp(vm.driver.qmp_path), vm.dir / "udp-test-ports.json")
        fwd.sync([{"Id": "udp", "Names": ["/udp"],
                   "Ports": [{"IP": "0.0.0.0", "PrivatePort": 5353, "PublicPort": 5353, "Type": "udp"}]}])
        host_port = [f.host_port for f in fwd.forwards.values()][0]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        got, end = "", time.monotonic() + 20
        while time.monotonic() < end and not got:
            s.sendto(b"ping", ("127.0.0.1", host_port))
            try:
                got = s.recv(512).decode()
            except socket.timeout:
                pass
        s.close()
        seen = vm.run("cat /tmp/udp.log", timeout=30)[1]
        fwd.clear()
        return {"reply": got, "guest_saw": "ping" in seen}

    www = sys.argv[3]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=www))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    pool = VMPool(sys.argv[2])
    try:
        vms = [pool.create("nat1", wait=False, network_mode="nat", memory=512),
               pool.create("iso1", wait=False, network_mode="isolated", memory=512)]
        wait_ssh_parallel(vms)
        out = {"port": port}
        fetch = ("python3 -c \\"import urllib.request as u; "
                 f"print(u.urlopen('http://10.0.2.2:{port}/hello.txt', timeout=10).read().decode())\\"")
        for vm in vms:
            rc, so, se = vm.run(fetch, timeout=60)
            out[vm.name] = {"rc": rc, "out": so.strip(), "err": se.strip()[-300:], "boot": vm.boot_seconds,
                            "udp": udp_round_trip(vm)}
        print(json.dumps(out))
    finally:
        pool.close()
""")


GUEST_UDP_ECHO = textwrap.dedent("""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5353))
    while True:
        data, addr = s.recvfrom(512)
        with open("/tmp/udp.log", "ab") as f:
            f.write(data + b"\\n")
        s.sendto(b"echo:" + data, addr)
""")


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"mtest-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        links = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link"], capture_output=True,
                               text=True).stdout
        assert [ln.split(":")[1].strip() for ln in links.splitlines()] == ["lo"], links
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_nat_guest_reaches_the_namespace_loopback_isolated_does_not(engine_image, netns, tmp_path_factory):
    store = vm_store(tmp_path_factory, "netnsstore")
    www = Path(tmp_path_factory.mktemp("www"))
    (www / "hello.txt").write_text("outbound-ok\n")
    t0 = time.monotonic()
    udp_echo = base64.b64encode(GUEST_UDP_ECHO.encode()).decode()
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", NETNS_HELPER, str(TESTS), str(store),
                        str(www), udp_echo], capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, QEMU_NETWORK_MODE=""))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"netns pair: {time.monotonic() - t0:.0f}s; boots {res['nat1']['boot']:.0f}s/{res['iso1']['boot']:.0f}s",
          file=sys.stderr)
    assert res["nat1"]["rc"] == 0 and res["nat1"]["out"] == "outbound-ok", res
    assert res["iso1"]["rc"] != 0 and res["iso1"]["out"] == "", res
    # a published UDP port: the datagram reaches either guest; only the NAT guest's reply comes back
    # (QEMU's user-mode network drops every datagram an isolated guest sends, replies included)
    assert res["nat1"]["udp"] == {"reply": "echo:ping", "guest_saw": True}, res
    assert res["iso1"]["udp"] == {"reply": "", "guest_saw": True}, res
    assert not list((store / "machines").iterdir())
