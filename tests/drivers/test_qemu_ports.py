"""Fast tests of published ports, network modes, shares and cloud-image options of the qemu driver.

Real where it is cheap: a real QEMU with no guest takes the agent's hostfwd_add/remove over
QMP (its user-mode forwards bind real sockets on 127.0.0.1), and a small engine stand-in
speaks the Docker API's /containers/json and /events over mutual TLS with certificates made
by machine.certs. No VM boots here (see tests/e2e/test_qemu_features.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fakes import driver_under_test
from machine.drivers.qemu import QemuConfig, QemuDriver, agent, ports, process, seed, shares
from machine.errors import MachineError, UsageError

HAVE_QEMU = shutil.which("qemu-system-x86_64") is not None and shutil.which("qemu-img") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu not installed")


def cfg(**opts) -> QemuConfig:
    return QemuConfig.from_options(opts, driver_name="qemu", machine_name="m1", environ={})


def _container(name, *ports_, state="running"):
    return {"Id": hashlib.sha256(name.encode()).hexdigest(), "Names": ["/" + name], "State": state,
            "Ports": [dict(zip(("IP", "PrivatePort", "PublicPort", "Type"), p)) for p in ports_]}


# ---- options ------------------------------------------------------------------------------

def test_network_mode_defaults_to_nat_and_isolated_restricts():
    assert cfg().network_mode == "nat" and cfg().forward_ports == "on"
    spec = lambda **kw: process.build_argv(process.VMSpec(  # noqa: E731
        name="m", disk="/d", seed="/s", qmp_socket="/q", pid_file="/p", console_log="/c", ssh_port=1,
        engine_port=2, nat_mac="52:54:00:00:00:01", **kw))
    netdev = lambda argv: argv[argv.index("-netdev") + 1]  # noqa: E731
    assert "restrict=off" in netdev(spec(restrict=False))
    assert "restrict=on" in netdev(spec(restrict=True))
    with pytest.raises(UsageError, match="--qemu-network-mode"):
        cfg(network_mode="bridged")
    with pytest.raises(UsageError, match="--qemu-forward-ports"):
        cfg(forward_ports="maybe")
    assert QemuConfig.from_options({}, driver_name="qemu", environ={"QEMU_NETWORK_MODE": "isolated"}) \
        .network_mode == "isolated"


def test_driver_boots_isolated_or_nat(tmp_path):
    for mode, restrict in (("nat", False), ("isolated", True)):
        d = driver_under_test(QemuDriver, tmp_path / mode, "m1", options={"network_mode": mode})
        d.config.ssh_port, d.config.engine_port, d.config.nat_mac = 40022, 40376, "52:54:00:00:00:01"
        spec = d._spec()
        assert spec.restrict is restrict and spec.agent_qmp_socket.endswith("qmp-agent.sock")


def test_argv_shares_are_9p_with_escaped_paths():
    argv = process.build_argv(process.VMSpec(
        name="m", disk="/d", seed="/s", qmp_socket="/q", pid_file="/p", console_log="/c", ssh_port=1,
        engine_port=2, nat_mac="52:54:00:00:00:01", agent_qmp_socket="/qa",
        shares=[("share0", "/home/u/src", False), ("share1", "/a,b", True)]))
    i = argv.index("-fsdev")
    assert argv[i + 1] == "local,id=fs0,path=/home/u/src,security_model=none"
    assert argv[i + 3] == "virtio-9p-pci,fsdev=fs0,mount_tag=share0"
    assert "local,id=fs1,path=/a,,b,security_model=none,readonly=on" in argv
    assert argv[argv.index("-qmp", argv.index("-qmp") + 1) + 1] == "unix:/qa,server=on,wait=off"


@pytest.mark.parametrize("value,host,guest,ro", [
    ("/srv/data", "/srv/data", "/srv/data", False),
    ("/srv/data:/data", "/srv/data", "/data", False),
    ("/srv/data:/data:ro", "/srv/data", "/data", True),
    ("/srv/data:ro", "/srv/data", "/srv/data", True),
    ("/srv/data/:/data//x/", "/srv/data", "/data/x", False),
])
def test_share_parsing(value, host, guest, ro):
    s = shares.parse(value)
    assert (s.host, s.guest, s.readonly) == (host, guest, ro)


@pytest.mark.parametrize("value,match", [
    ("/a:/b:/c", "HOST_DIR"),
    ("/a:relative", "absolute"),
    ("/a:/", "hide the system"),
    ("/a:/etc", "hide the system"),
    ("/a:/var/lib/docker", "hide the system"),
    ("/a:/proc/x", "not a place"),
    ("/a\nb", "control characters"),
    (":/x", "host folder"),
])
def test_bad_shares(value, match):
    with pytest.raises(UsageError, match=match):
        shares.parse(value)


def test_share_lists_checked_as_a_whole(tmp_path):
    with pytest.raises(UsageError, match="two folders"):
        shares.parse_all(["/a:/x", "/b:/x"])
    with pytest.raises(UsageError, match="nested"):
        shares.parse_all(["/a:/x", "/b:/x/y"])
    # a comma splits the flag's value into two items (docker-machine's list style)
    with pytest.raises(UsageError, match="--qemu-share"):
        cfg(share=["/srv/a,:/etc"])
    with pytest.raises(UsageError, match="not a folder"):
        shares.check_host_dirs(shares.parse_all([str(tmp_path / "missing")]))
    assert cfg(share=[str(tmp_path), f"{tmp_path}:/data:ro"]).shares == [str(tmp_path), f"{tmp_path}:/data:ro"]


def test_share_mounts_go_into_the_seed_as_argv(tmp_path):
    odd = "/srv/it's $(reboot) `x`"
    cmds = shares.bootcmds(shares.parse_all([f"/h:{odd}", "/ro:/r:ro"]))
    doc = json.loads(seed.user_data("m1", "ssh-ed25519 AAAA k", "root", cmds).split("\n", 1)[1])
    assert doc["bootcmd"][0][-3:] == ["share0", odd, ""]
    assert doc["bootcmd"][1][-3:] == ["share1", "/r", ",ro"]
    script = doc["bootcmd"][0][2]
    assert "$(" not in script and "mount -t 9p" in script
    # the script mounts exactly its arguments, whatever they hold (run here with echo for mount)
    out = subprocess.run(["sh", "-c", script.replace("mount -t", "echo mount -t").replace("mkdir -p", "true"),
                          "x", "share0", odd, ""], capture_output=True, text=True)
    assert out.stdout.strip().endswith(f"share0 {odd}"), out


def test_share_host_dir_checked_before_create(tmp_path):
    d = driver_under_test(QemuDriver, tmp_path, "m1",
                          options={"share": [str(tmp_path / "nope")], "image": "/nonexistent"})
    with pytest.raises(UsageError):
        d.pre_create_check()


@pytest.mark.parametrize("value,ok", [
    ("sha256:" + "a" * 64, True), ("SHA256:" + "A" * 64, True), ("a" * 64, True), ("sha512:" + "0" * 128, True),
    ("md5:" + "a" * 32, False), ("sha256:xyz", False), ("sha256:" + "a" * 63, False),
])
def test_checksum_option(value, ok):
    if ok:
        assert cfg(image_checksum=value).image_checksum == value
    else:
        with pytest.raises(UsageError, match="--qemu-image-checksum"):
            cfg(image_checksum=value)


# ---- images: checksum, download, raw ----------------------------------------------------

@pytest.fixture
def raw_image(tmp_path):
    p = tmp_path / "cloud.raw"
    with open(p, "wb") as f:
        f.truncate(8 * 1024 * 1024)
        f.seek(0)
        f.write(b"\x00" * 510 + b"\x55\xaa")
    return p


@needs_qemu
def test_local_raw_image_with_checksum(tmp_path, raw_image):
    good = "sha256:" + hashlib.sha256(raw_image.read_bytes()).hexdigest()
    d = driver_under_test(QemuDriver, tmp_path / "s1", "m1", options={"image": str(raw_image), "image_checksum": good})
    d._resolve_image()
    assert d.config.image_format == "raw" and d.config.kernel == "" and d.config.image_path == str(raw_image)
    bad = "sha256:" + "0" * 64
    d = driver_under_test(QemuDriver, tmp_path / "s2", "m1", options={"image": str(raw_image), "image_checksum": bad})
    with pytest.raises(MachineError, match="checksum mismatch"):
        d._resolve_image()
    d = driver_under_test(QemuDriver, tmp_path / "s3", "m1", options={"image_checksum": bad})
    with pytest.raises(UsageError, match="needs --qemu-image"):
        d._resolve_image()


@needs_qemu
def test_raw_image_overlay_grows_to_disk_size(tmp_path, raw_image):
    out = tmp_path / "disk.qcow2"
    process.create_overlay(str(raw_image), "raw", str(out), 3 * 1024 ** 3)
    info = process.image_info(str(out))
    assert info["virtual-size"] == 3 * 1024 ** 3 and info["backing-filename-format"] == "raw"


@pytest.fixture
def http_files(tmp_path):
    """A loopback HTTP server over a folder; counts requests."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class H(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            hits.append(self.path)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()


@needs_qemu
def test_url_image_checksum_xz_and_cache(tmp_path, raw_image, http_files):
    import lzma

    root, base, hits = http_files
    packed = lzma.compress(raw_image.read_bytes())
    (root / "img.raw.xz").write_bytes(packed)
    url = base + "/img.raw.xz"
    want = "sha256:" + hashlib.sha256(packed).hexdigest()   # of the file as published
    store = tmp_path / "store"
    d = driver_under_test(QemuDriver, store, "m1", options={"image": url, "image_checksum": want})
    d._resolve_image()
    assert Path(d.config.image_path).read_bytes() == raw_image.read_bytes() and d.config.image_format == "raw"
    d2 = driver_under_test(QemuDriver, store, "m2", options={"image": url, "image_checksum": want})
    d2._resolve_image()
    assert len(hits) == 1, "the verified copy in the cache is reused"
    d3 = driver_under_test(QemuDriver, tmp_path / "other", "m3",
                           options={"image": url, "image_checksum": "sha256:" + "1" * 64})
    with pytest.raises(MachineError, match="checksum mismatch"):
        d3._resolve_image()
    assert not list((tmp_path / "other").rglob("downloads/*[0-9a-f]")), "a file that failed the check is not kept"


# ---- which ports to forward ------------------------------------------------------------------

def test_published_ports_from_container_list():
    cs = [_container("web", ("0.0.0.0", 80, 8080, "tcp"), ("::", 80, 8080, "tcp"), ("0.0.0.0", 53, 5353, "udp")),
          _container("local", ("127.0.0.1", 80, 9000, "tcp")),          # guest loopback only: unreachable
          _container("internal", ("", 80, None, "tcp")),                # exposed, not published
          _container("gone", ("0.0.0.0", 1, 7000, "tcp"), state="exited"),
          _container("web2", ("0.0.0.0", 81, 8080, "tcp"))]
    assert agent.published(cs) == {("tcp", 8080): ["web", "web2"], ("udp", 5353): ["web"]}


class FakeMonitor:
    def __init__(self, busy=()):
        self.rules: dict[str, int] = {}
        self.busy = set(busy)
        self.log: list[str] = []

    def __call__(self, cmd: str) -> str:
        self.log.append(cmd)
        parts = cmd.split()
        if parts[0] == "hostfwd_add":
            hostpart, guest = parts[2].split("-:")
            port = int(hostpart.rsplit(":", 1)[1])
            if port in self.busy or hostpart in self.rules:
                return f"Could not set up host forwarding rule '{parts[2]}'\r\n"
            self.rules[hostpart] = int(guest)
            return ""
        if parts[0] == "hostfwd_remove":
            return f"host forwarding rule for {parts[2]} removed\r\n" if self.rules.pop(parts[2], None) else \
                f"host forwarding rule for {parts[2]} not found\r\n"
        return "unknown command"


def _forwarder(tmp_path, mon, *, taken=(), root=False, **kw):
    frees = iter(range(41000, 41100))
    return agent.Forwarder(mon, tmp_path / "ports.json", root=root,
                           port_free=lambda proto, p: p not in taken,
                           free_port=lambda proto, exclude: next(p for p in frees if p not in exclude), **kw)


def test_forwarder_same_port_else_another_and_removal(tmp_path):
    mon = FakeMonitor(busy={9090})
    fwd = _forwarder(tmp_path, mon, taken={8443}, avoid={2222})
    cs = [_container("web", ("0.0.0.0", 80, 8080, "tcp")), _container("dns", ("0.0.0.0", 53, 8080, "udp")),
          _container("tls", ("0.0.0.0", 443, 8443, "tcp")),   # in use on the host
          _container("mon", ("0.0.0.0", 1, 9090, "tcp")),     # QEMU refuses (lost a race)
          _container("ssh", ("0.0.0.0", 22, 2222, "tcp")),     # another machine's port
          _container("low", ("0.0.0.0", 80, 80, "tcp"))]      # privileged: not root
    assert fwd.sync(cs)
    got = {(f.proto, f.guest_port): f.host_port for f in fwd.forwards.values()}
    assert got[("tcp", 8080)] == 8080 and got[("udp", 8080)] == 8080
    assert got[("tcp", 8443)] >= 41000 and got[("tcp", 9090)] >= 41000 and got[("tcp", 2222)] >= 41000
    assert got[("tcp", 80)] >= 41000
    assert len(set(got.values())) == len(got) - 1, "tcp and udp 8080 may share the number, nothing else does"
    assert "tcp:127.0.0.1:8080" in mon.rules and "udp:127.0.0.1:8080" in mon.rules
    state = json.loads((tmp_path / "ports.json").read_text())
    assert {(f["proto"], f["guest_port"], tuple(f["containers"])) for f in state["forwards"]} >= \
        {("tcp", 8080, ("web",)), ("udp", 8080, ("dns",))}
    assert not fwd.sync(cs), "nothing changes, nothing is written"
    fwd.sync([c for c in cs if c["Names"] != ["/web"]])
    assert "tcp:127.0.0.1:8080" not in mon.rules and ("tcp", 8080) not in fwd.forwards
    fwd.sync([])
    assert mon.rules == {} and json.loads((tmp_path / "ports.json").read_text())["forwards"] == []


def test_forwarder_root_keeps_low_ports_and_adopts_its_qemus_rules(tmp_path):
    mon = FakeMonitor()
    fwd = _forwarder(tmp_path, mon, root=True, qemu_pid=4242)
    fwd.sync([_container("web", ("0.0.0.0", 80, 80, "tcp"))])
    assert fwd.forwards[("tcp", 80)].host_port == 80
    again = _forwarder(tmp_path, mon, root=True, qemu_pid=4242)
    assert set(again.forwards) == {("tcp", 80)}, "a restarted agent takes over the same QEMU's forwards"
    assert not again.sync([_container("web", ("0.0.0.0", 80, 80, "tcp"))])
    other = _forwarder(tmp_path, FakeMonitor(), root=True, qemu_pid=5555)
    assert other.forwards == {}, "a new QEMU has no forwards"


def test_forwarder_records_what_it_cannot_forward(tmp_path):
    mon = FakeMonitor()
    fwd = agent.Forwarder(mon, tmp_path / "ports.json", root=False, port_free=lambda proto, p: False,
                          free_port=lambda proto, exclude: (_ for _ in ()).throw(OSError("no free tcp port")))
    fwd.sync([_container("web", ("0.0.0.0", 80, 8080, "tcp"))])
    assert fwd.forwards == {} and "tcp/8080" in json.loads((tmp_path / "ports.json").read_text())["errors"]
    fwd.sync([])
    assert json.loads((tmp_path / "ports.json").read_text())["errors"] == {}


# ---- a real QEMU (no guest) takes the forwards ----------------------------------------------

@pytest.fixture
def bare_qemu(tmp_path):
    """QEMU with a user-mode netdev (isolated) and the agent's own monitor; no guest runs."""
    sock, pidf = tmp_path / "q.sock", tmp_path / "q.pid"
    pid = process.launch(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                          "-netdev", "user,id=nat0,restrict=on",
                          "-qmp", f"unix:{sock},server=on,wait=off", "-pidfile", str(pidf), "-daemonize"],
                         str(pidf), timeout=30)
    yield pid, str(sock)
    process.kill_pid(pid)


@needs_qemu
def test_hostfwd_through_qmp_binds_and_releases_real_ports(tmp_path, bare_qemu):
    pid, sock = bare_qemu
    tcp, udp = ports.free_port("tcp"), ports.free_port("udp")
    fwd = agent.Forwarder(agent._qmp_hmp(sock), tmp_path / "ports.json", qemu_pid=pid)
    fwd.sync([_container("web", ("0.0.0.0", 80, tcp, "tcp")), _container("dns", ("0.0.0.0", 53, udp, "udp"))])
    assert fwd.forwards[("tcp", tcp)].host_port == tcp and fwd.forwards[("udp", udp)].host_port == udp
    assert not ports.port_free(tcp) and not ports.udp_port_free(udp), "QEMU listens on 127.0.0.1"
    # a port busy on the host: the forward goes to another one
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        n = busy.getsockname()[1]
        fwd.sync([_container("web", ("0.0.0.0", 80, tcp, "tcp")), _container("b", ("0.0.0.0", 1, n, "tcp"))])
        assert fwd.forwards[("tcp", n)].host_port != n
        assert not ports.port_free(fwd.forwards[("tcp", n)].host_port)
    finally:
        busy.close()
    fwd.sync([])
    assert ports.port_free(tcp) and ports.udp_port_free(udp), "hostfwd_remove closed the sockets"


# ---- the agent process against an engine stand-in over mutual TLS -------------------------------

class FakeEngine:
    """/containers/json and a chunked /events stream over TLS that checks the client certificate."""

    def __init__(self, d: Path):
        from machine import certs

        certs.generate_ca(d / "ca.pem", d / "ca-key.pem")
        certs.generate_server_cert(d / "ca.pem", d / "ca-key.pem", d / "server.pem", d / "server-key.pem",
                                   common_name="engine", sans=["127.0.0.1"])
        certs.generate_client_cert(d / "ca.pem", d / "ca-key.pem", d / "cert.pem", d / "key.pem")
        self.containers: list[dict] = []
        self.subscribers: list[queue.Queue] = []
        self.lists = 0
        engine = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/containers/json"):
                    engine.lists += 1
                    body = json.dumps(engine.containers).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path.startswith("/events"):
                    q: queue.Queue = queue.Queue()
                    engine.subscribers.append(q)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    while True:
                        ev = q.get()
                        if ev is None:
                            self.wfile.write(b"0\r\n\r\n")
                            return
                        data = json.dumps(ev).encode() + b"\n"
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                else:
                    self.send_error(404)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d / "server.pem", d / "server-key.pem")
        ctx.load_verify_locations(d / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def emit(self, action: str, name: str):
        for q in list(self.subscribers):
            q.put({"Type": "container", "Action": action, "Actor": {"ID": name, "Attributes": {"name": name}}})

    def drop_streams(self):
        for q in list(self.subscribers):
            q.put(None)
        self.subscribers.clear()

    def close(self):
        self.drop_streams()
        self.srv.shutdown()


def _wait(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


@needs_qemu
def test_agent_follows_events_and_ends_cleanly(tmp_path, bare_qemu):
    pid, sock = bare_qemu
    mdir = tmp_path / "m1"
    mdir.mkdir()
    certdir = tmp_path / "certs"
    certdir.mkdir()
    engine = FakeEngine(certdir)
    try:
        web = ports.free_port("tcp")
        engine.containers = [_container("early", ("0.0.0.0", 80, web, "tcp"))]
        apid = agent.spawn(mdir, sock, engine.port, pid)
        assert agent.agent_pid(mdir) == apid
        assert _wait(lambda: "waiting for the client certificates" in (mdir / "agent.log").read_text())
        assert agent.read_state(mdir).get("forwards") == [], "no forwards before the certificates exist"
        for n in ("ca.pem", "cert.pem", "key.pem"):      # provisioning finished
            shutil.copy(certdir / n, mdir / n)
        assert _wait(lambda: [f["host_port"] for f in agent.read_state(mdir).get("forwards", [])] == [web]), \
            (mdir / "agent.log").read_text()
        assert not ports.port_free(web)

        udp = ports.free_port("udp")
        t0 = time.monotonic()
        engine.containers.append(_container("dns", ("0.0.0.0", 53, udp, "udp")))
        engine.emit("start", "dns")
        assert _wait(lambda: not ports.udp_port_free(udp)), (mdir / "agent.log").read_text()
        took = time.monotonic() - t0
        assert took < 10, f"forward took {took:.1f}s"  # event-driven, not a poll; bench_qemu_ports measures it

        engine.containers = engine.containers[1:]
        engine.emit("die", "early")
        assert _wait(lambda: ports.port_free(web)), "the forward goes with its container"

        # the engine restarts (stream ends): the agent reconnects and resyncs
        engine.containers.append(_container("late", ("0.0.0.0", 80, web, "tcp")))
        engine.drop_streams()
        assert _wait(lambda: not ports.port_free(web)), (mdir / "agent.log").read_text()
        # the agent binds the forward, then records it: wait for the record too
        assert _wait(lambda: {f["guest_port"] for f in agent.read_state(mdir).get("forwards", [])} == {web, udp}), \
            agent.read_state(mdir)

        agent.stop(mdir)
        assert agent.agent_pid(mdir) is None and not (mdir / "ports.json").exists()
        assert ports.port_free(web) and ports.udp_port_free(udp), "a stopped agent takes its forwards along"
        agent.stop(mdir)   # idempotent
    finally:
        agent.stop(mdir)
        engine.close()


@needs_qemu
def test_agent_exits_with_its_qemu(tmp_path, bare_qemu):
    pid, sock = bare_qemu
    mdir = tmp_path / "m1"
    mdir.mkdir()
    apid = agent.spawn(mdir, sock, 9, pid)
    assert agent.agent_pid(mdir) == apid
    process.kill_pid(pid)
    assert _wait(lambda: agent.agent_pid(mdir) is None, 10), "the agent ends when QEMU is gone"


def test_ports_verb_is_registered_and_reads_the_agent_state(tmp_path, cli):
    from machine.driver import driver_commands

    assert driver_commands()["ports"] == "machine.drivers.qemu.cli:ports"
    r = cli("ports", "nosuch")
    assert r.code == 1 and "does not exist" in r.err
