"""Fast tests of the qemu driver: seed, ports, accelerator, argv, networks, bad input.

Real where it is cheap: real sockets, real qemu-img, a real QEMU with no guest for
QMP, real vde_switch. No VM boots here (see tests/e2e/test_qemu.py).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fakes import driver_under_test
from machine.driver import get_driver_class
from machine.drivers.qemu import QemuDriver, image, ports, process, seed
from machine.errors import MachineError, UsageError
from machine.model import State

HAVE_QEMU = shutil.which("qemu-system-x86_64") is not None and shutil.which("qemu-img") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu not installed")
def load_yaml(text: str):
    """cloud-init reads the seed with PyYAML; without it, the JSON subset we write."""
    try:
        import yaml
    except ImportError:
        if text.startswith("#cloud-config"):
            text = text.split("\n", 1)[1]
        return json.loads(text)
    return yaml.safe_load(text)


PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0aG6bTqfYbJ1x1v6Gm6bYy2h4e8Xr3Zs1W9C2Vw7q0 machine@t"


def make_driver(store: Path, name: str = "m1", peers=None, **opts) -> QemuDriver:
    opts.setdefault("network_mode", "isolated")   # nothing a test boots reaches beyond loopback
    return driver_under_test(QemuDriver, store, name, options=opts, peers=peers)


def tree(p: Path) -> list[str]:
    return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []


# ---- registry -----------------------------------------------------------------

def test_registered_as_qemu_and_kvm():
    assert get_driver_class("qemu") is QemuDriver
    assert get_driver_class("kvm") is QemuDriver
    flags = {o.cli_flag("qemu") for o in QemuDriver.Config.options()}
    assert {"--qemu-memory", "--qemu-cpus", "--qemu-disk-size", "--qemu-image", "--qemu-accel",
            "--qemu-network", "--qemu-ssh-user"} <= flags
    defaults = {o.flag: o.default for o in QemuDriver.Config.options()}
    assert (defaults["memory"], defaults["cpus"], defaults["disk-size"], defaults["accel"]) == (1024, 1, 10, "auto")


# ---- seed -----------------------------------------------------------------------

def test_seed_iso_contents(tmp_path):
    iso = tmp_path / "seed.iso"
    seed.write_seed(iso, instance_id="m1-abc", hostname="m1", public_key=PUB, ssh_user="root",
                    nat_mac="52:54:00:12:34:56", private_mac="52:54:00:AA:BB:CC",
                    private_cidr="192.168.77.10/24")
    assert iso.stat().st_mode & 0o077 == 0
    label, files = seed.read_iso(iso)
    assert label == "cidata"
    assert set(files) == {"meta-data", "user-data", "network-config", "machine-seed.sh"}
    meta = load_yaml(files["meta-data"])
    assert meta == {"instance-id": "m1-abc", "local-hostname": "m1"}
    assert files["user-data"].startswith("#cloud-config\n")
    ud = load_yaml(files["user-data"])
    assert ud["ssh_authorized_keys"] == [PUB]
    assert ud["locale"] is False
    assert ud["disable_root"] is False
    assert ud["ssh_pwauth"] is False
    net = load_yaml(files["network-config"])
    assert net["version"] == 2
    assert net["ethernets"]["nat0"] == {"match": {"macaddress": "52:54:00:12:34:56"}, "dhcp4": True}
    assert net["ethernets"]["priv0"]["match"] == {"macaddress": "52:54:00:aa:bb:cc"}
    assert net["ethernets"]["priv0"]["addresses"] == ["192.168.77.10/24"]


def test_seed_without_network_and_with_a_user():
    net = json.loads(seed.network_config("52:54:00:00:00:01"))
    assert list(net["ethernets"]) == ["nat0"]
    ud = json.loads(seed.user_data("h", PUB, ssh_user="debian").split("\n", 1)[1])
    assert "disable_root" not in ud
    user = ud["users"][1]
    assert user["name"] == "debian" and user["ssh_authorized_keys"] == [PUB]
    assert user["sudo"].startswith("ALL=(ALL) NOPASSWD")


def test_seed_values_cannot_break_yaml():
    ud = seed.user_data('evil"\n: x', PUB)
    assert load_yaml(ud)["hostname"] == 'evil"\n: x'
    with pytest.raises(ValueError):
        seed.user_data("h", PUB + "\nssh-rsa AAAA other")


# ---- ports ------------------------------------------------------------------------

def test_free_ports_are_distinct_and_bindable():
    got = ports.free_ports(4)
    assert len(set(got)) == 4
    for p in got:
        assert ports.port_free(p)


def test_port_in_use_is_not_free_and_is_excluded():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    try:
        assert not ports.port_free(busy)
        assert busy not in ports.free_ports(20)
        assert 5555 not in ports.free_ports(3, exclude={5555})
    finally:
        s.close()
    assert not ports.port_free(0) and not ports.port_free(70000)


def test_peer_claims_are_skipped_and_declared(tmp_path):
    from machine.driver import Claims
    from machine.drivers.qemu import QemuConfig

    busy = {40001, 40002}
    d = make_driver(tmp_path, peers=lambda: [Claims(ports=frozenset(busy))])
    d._pick_ports(pinned=False)
    assert {d.config.ssh_port, d.config.engine_port}.isdisjoint(busy)
    cfg = QemuConfig.from_record({"SSHPort": 40003, "EnginePort": "40004", "PrivateIPAddress": "192.168.77.9"})
    assert cfg.claims() == Claims(ports=frozenset({40003, 40004}), addresses=frozenset({"192.168.77.9"}))
    pinned = make_driver(tmp_path, "m2", peers=lambda: [Claims(ports=frozenset({40005}))], ssh_port=40005)
    with pytest.raises(UsageError, match="in use"):
        pinned._check_pinned_ports()


def test_pick_ports_keeps_free_ones_and_replaces_taken(tmp_path):
    d = make_driver(tmp_path)
    with d.ctx.lock(ports.LOCK_NAME):
        d._pick_ports(pinned=False)
    first = (d.config.ssh_port, d.config.engine_port)
    assert first[0] != first[1]
    with d.ctx.lock(ports.LOCK_NAME):
        d._pick_ports(pinned=False)
    assert (d.config.ssh_port, d.config.engine_port) == first
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", first[0]))
    s.listen(1)
    try:
        d._pick_ports(pinned=False)
        assert d.config.ssh_port != first[0] and d.config.engine_port == first[1]
        d.config.ssh_port = first[0]
        with pytest.raises(MachineError, match="in use"):
            d._pick_ports(pinned=True)
    finally:
        s.close()


# ---- accelerator ----------------------------------------------------------------------

def test_accel_auto_picks_tcg_without_kvm_intel_or_amd(tmp_path):
    mods = tmp_path / "module"
    (mods / "kvm").mkdir(parents=True)
    (mods / "kvm_pvm").mkdir()
    dev = tmp_path / "kvm"
    dev.write_text("")
    assert process.choose_accel("auto", sys_module=str(mods), dev_kvm=str(dev)) == "tcg"
    (mods / "kvm_intel").mkdir()
    assert process.choose_accel("auto", sys_module=str(mods), dev_kvm=str(dev)) == "kvm"
    assert process.choose_accel(None, sys_module=str(mods), dev_kvm=str(tmp_path / "none")) == "tcg"
    assert process.choose_accel("TCG", sys_module=str(mods), dev_kvm=str(dev)) == "tcg"


def test_accel_kvm_needs_dev_kvm_and_bad_values_fail(tmp_path):
    with pytest.raises(MachineError, match="kvm"):
        process.choose_accel("kvm", dev_kvm=str(tmp_path / "missing"))
    with pytest.raises(MachineError, match="invalid --qemu-accel"):
        process.choose_accel("hvf")


def test_accel_on_this_host_matches_sys_module():
    real = os.path.isdir("/sys/module/kvm_intel") or os.path.isdir("/sys/module/kvm_amd")
    got = process.choose_accel("auto")
    assert got == ("kvm" if real and os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg")


def test_accel_args():
    assert process.accel_args("tcg") == ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]
    assert process.accel_args("kvm") == ["-accel", "kvm", "-cpu", "host"]


# ---- argv --------------------------------------------------------------------------

def _spec(**kw):
    base = dict(name="m1", disk="/s/m1/disk.qcow2", seed="/s/m1/seed.iso", qmp_socket="/s/m1/qmp.sock",
                pid_file="/s/m1/qemu.pid", console_log="/s/m1/console.log", ssh_port=40022,
                engine_port=40376, nat_mac="52:54:00:00:00:01")
    base.update(kw)
    return process.VMSpec(**base)


def test_argv_kernel_boot_user_net_only_on_loopback():
    argv = process.build_argv(_spec(kernel="/c/vmlinuz", initrd="/c/initrd.img", memory=512, cpus=2))
    line = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-kernel") + 1] == "/c/vmlinuz"
    assert argv[argv.index("-initrd") + 1] == "/c/initrd.img"
    assert argv[argv.index("-append") + 1] == "root=/dev/vda rw console=ttyS0"
    assert argv[argv.index("-m") + 1] == "512" and argv[argv.index("-smp") + 1] == "2"
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev == ("user,id=nat0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22,"
                      "hostfwd=tcp:127.0.0.1:40376-:2376")
    assert "0.0.0.0" not in line and "vde" not in line
    assert "-daemonize" in argv and argv[argv.index("-pidfile") + 1] == "/s/m1/qemu.pid"
    assert "unix:/s/m1/qmp.sock,server=on,wait=off" in argv
    assert "file=/s/m1/disk.qcow2,if=virtio,format=qcow2,discard=unmap" in argv
    assert "file=/s/m1/seed.iso,if=virtio,format=raw,readonly=on" in argv
    assert "tcg,thread=multi,tb-size=256" in argv


def test_argv_disk_boot_with_private_network():
    argv = process.build_argv(_spec(vde_socket="/s/net/sw", private_mac="52:54:00:00:00:02", accel="kvm"))
    assert "-kernel" not in argv and "-append" not in argv
    assert "vde,id=priv0,sock=/s/net/sw" in argv
    assert "virtio-net-pci,netdev=priv0,mac=52:54:00:00:00:02" in argv
    assert argv[argv.index("-accel") + 1] == "kvm"


def test_long_socket_paths_get_a_short_stand_in(tmp_path):
    short = process.short_socket_path(tmp_path, "qmp.sock")
    assert short == str(tmp_path / "qmp.sock")
    deep = tmp_path / ("x" * 120)
    alt = process.short_socket_path(deep, "qmp.sock")
    assert len(alt) <= process.UNIX_PATH_MAX and alt == process.short_socket_path(deep, "qmp.sock")
    assert alt != process.short_socket_path(tmp_path / ("y" * 120), "qmp.sock")


# ---- real QEMU, no guest ----------------------------------------------------------------

@needs_qemu
def test_qmp_against_a_real_qemu(tmp_path):
    sock, pidf = tmp_path / "q.sock", tmp_path / "q.pid"
    pid = process.launch(["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                          "-qmp", f"unix:{sock},server=on,wait=off", "-pidfile", str(pidf), "-daemonize"],
                         str(pidf), timeout=30)
    try:
        assert process.pid_alive(pid, must_contain=str(sock))
        assert not process.pid_alive(pid, must_contain="some-other-vm")
        with process.QMP(str(sock)) as mon:
            assert mon.command("query-status")["status"] in ("running", "prelaunch")
            with pytest.raises(process.QMPError, match="no-such-command"):
                mon.command("no-such-command")
        assert process.rss_bytes(pid) > 0
    finally:
        process.kill_pid(pid)
    assert not process.pid_alive(pid)
    with pytest.raises(process.QMPError, match="cannot reach"):
        process.qmp(str(sock), "query-status")


@needs_qemu
def test_qemu_start_failure_is_one_line(tmp_path):
    spec = _spec(disk=str(tmp_path / "missing.qcow2"), seed=str(tmp_path / "missing.iso"),
                 qmp_socket=str(tmp_path / "q.sock"), pid_file=str(tmp_path / "q.pid"),
                 console_log=str(tmp_path / "console.log"), ssh_port=ports.free_ports(1)[0],
                 engine_port=ports.free_ports(1)[0])
    t0 = time.monotonic()
    with pytest.raises(MachineError) as e:
        process.launch(process.build_argv(spec), spec.pid_file)
    assert time.monotonic() - t0 < 30
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("qemu failed to start:") and "missing.qcow2" in msg
    assert not (tmp_path / "q.pid").exists()


# ---- images ----------------------------------------------------------------------------

def test_recipe_hash_depends_on_recipe_only():
    a, b = image.recipe(True, "bookworm"), image.recipe(False, "bookworm")
    assert image.recipe_hash(a) == image.recipe_hash(image.recipe(True, "bookworm"))
    assert image.recipe_hash(a) != image.recipe_hash(b)
    assert image.recipe_hash(a) != image.recipe_hash(image.recipe(True, "trixie"))
    assert "docker.io" in a["packages"] and "docker.io" not in b["packages"]
    assert any("locale: false" in h for h in a["hooks"])


def test_host_sources_keep_debian_only_and_drop_credentials(tmp_path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "# comment\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
        "deb http://user:secret@private.example/debian bookworm main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian sid main\n")
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: https://download.docker.com/linux/debian\nSuites: bookworm\n"
        "Components: stable\nSigned-By: /etc/apt/keyrings/docker.asc\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n")
    (etc / "sources.list.d" / "old.list.disabled").write_text("deb http://x.example/debian bookworm main\n")
    got = image.host_sources("bookworm", etc)
    assert got == [
        "deb http://mirror.example/debian bookworm main contrib",
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
    ]
    assert image.host_sources("bookworm", tmp_path / "none") == []


def test_mmdebstrap_argv_copies_nothing_of_the_host(tmp_path):
    if not shutil.which("mmdebstrap"):
        pytest.skip("mmdebstrap not installed")
    rec = image.recipe(False, "bookworm")
    argv = image.mmdebstrap_argv(rec, tmp_path / "root", image.default_sources("bookworm"), tmp_path / "debs")
    line = " ".join(argv)
    assert "/etc/apt" not in line and "auth.conf" not in line
    assert "--variant=minbase" in argv and argv[-4:-3] == [str(tmp_path / "root")]
    assert "--download-only" in line  # the offline docker.io bundle for the base image


def test_cached_image_and_listing(tmp_path):
    store = tmp_path
    assert image.cached_image(store, True) is None
    d = image.images_dir(store) / image.recipe_hash(image.recipe(True))
    d.mkdir(parents=True)
    for n in ("base.qcow2", "vmlinuz", "initrd.img"):
        (d / n).write_text("x")
    assert image.cached_image(store, True) is None or True  # recipe.json is what `ls` needs
    (d / "recipe.json").write_text(json.dumps(dict(image.recipe(True), built="now")))
    found = image.cached_image(store, True)
    assert found and found.disk == d / "base.qcow2" and found.engine
    rows = image.list_images(store)
    assert [(r["engine"], r["current"]) for r in rows] == [(True, True)]


def test_cli_image_ls(tmp_path, cli):
    d = image.images_dir(tmp_path / "cache") / "0123456789abcdef"
    d.mkdir(parents=True)
    for n in ("base.qcow2", "vmlinuz", "initrd.img"):
        (d / n).write_text("x")
    (d / "recipe.json").write_text(json.dumps({"engine": False, "suite": "bookworm", "built": "t"}))
    r = cli("-s", str(tmp_path), "image", "ls")
    assert r.code == 0, r.err
    assert "0123456789abcdef" in r.out and "bookworm" in r.out
    r = cli("-s", str(tmp_path), "image", "ls", "-q")
    assert r.out.strip() == str(d)


# ---- networks ---------------------------------------------------------------------------

def test_network_leases(tmp_path):
    from machine.drivers.qemu.network import Network

    net = Network(tmp_path, "lab")
    assert net.lease("a", "52:54:00:00:00:01") == ("192.168.77.10", "192.168.77.10/24")
    assert net.lease("b", "52:54:00:00:00:02")[0] == "192.168.77.11"
    assert net.lease("a", "52:54:00:00:00:01")[0] == "192.168.77.10"
    net.release("a")
    assert net.lease("c", "52:54:00:00:00:03")[0] == "192.168.77.10"
    net.release("b")
    net.release("c")
    assert not net.dir.exists()
    net.release("c")  # idempotent
    with pytest.raises(UsageError):
        Network(tmp_path, "../etc")


@pytest.mark.skipif(not shutil.which("vde_switch"), reason="vde2 not installed")
def test_switch_starts_once_and_stops_with_the_last_lease(tmp_path):
    from machine.drivers.qemu.network import Network

    net = Network(tmp_path, "lab")
    net.lease("a", "52:54:00:00:00:01")
    sock = net.ensure_switch()
    pid = net.switch_pid()
    try:
        assert pid and os.path.exists(os.path.join(sock, "ctl"))
        assert net.ensure_switch() == sock and net.switch_pid() == pid
    finally:
        net.release("a")
    assert not process.pid_alive(pid)
    assert not os.path.exists(sock) and not net.dir.exists()


# ---- the driver: bad input, nothing left behind --------------------------------------------

@pytest.fixture
def small_image(tmp_path):
    if not HAVE_QEMU:
        pytest.skip("qemu not installed")
    img = tmp_path / "img" / "cloud.qcow2"
    img.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "3G"], check=True)
    return img


def _one_line(e: MachineError) -> str:
    s = str(e)
    assert "\n" not in s
    return s


@needs_qemu
def test_missing_image_path(tmp_path):
    store = tmp_path / "store"
    d = make_driver(store, image=str(tmp_path / "nope.qcow2"))
    with pytest.raises(UsageError) as e:
        d.pre_create_check()
    assert _one_line(e.value).startswith("image not found:")
    assert tree(store) == []


def test_no_qemu_installed(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    store = tmp_path / "store"
    with pytest.raises(MachineError) as e:
        make_driver(store).pre_create_check()
    assert _one_line(e.value) == "qemu-system-x86_64 not found: apt-get install qemu-system-x86 qemu-utils"
    assert tree(store) == []


@needs_qemu
def test_pinned_port_in_use(tmp_path, small_image):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    store = tmp_path / "store"
    try:
        with pytest.raises(UsageError) as e:
            make_driver(store, image=str(small_image), ssh_port=busy).pre_create_check()
        assert f"port 127.0.0.1:{busy} is in use" in _one_line(e.value)
        with pytest.raises(UsageError, match="both"):
            make_driver(store, image=str(small_image), ssh_port=40100, engine_port=40100).pre_create_check()
    finally:
        s.close()
    assert tree(store) == []


@needs_qemu
def test_not_enough_disk(tmp_path, small_image, monkeypatch):
    import machine.drivers.qemu as q

    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(q, "MIN_FREE_BYTES", free * 2)  # the real free space, a bar set above it
    store = tmp_path / "store"
    with pytest.raises(MachineError) as e:
        make_driver(store, image=str(small_image)).pre_create_check()
    assert _one_line(e.value).startswith("not enough free disk space")
    assert tree(store) == []


@needs_qemu
@pytest.mark.parametrize("opts, match", [
    ({"memory": 16}, "--qemu-memory"),
    ({"cpus": 0}, "--qemu-cpus"),
    ({"memory": "lots"}, "--qemu-memory"),
    ({"disk_size": 2}, "smaller than the image"),
    ({"accel": "hvf"}, "--qemu-accel"),
    ({"network": "a/b"}, "network name"),
    ({"ssh_user": "ro ot"}, "--qemu-ssh-user"),
])
def test_bad_options(tmp_path, small_image, opts, match):
    store = tmp_path / "store"
    with pytest.raises(MachineError, match=match) as e:
        make_driver(store, image=str(small_image), **opts).pre_create_check()
    _one_line(e.value)
    assert tree(store) == []


@needs_qemu
def test_not_an_image(tmp_path):
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"QFI\xfb\x00\x00\x00\x03" + b"\xff" * 100)  # a broken qcow2 header
    with pytest.raises(MachineError, match="not a disk image.*cluster size") as e:
        make_driver(tmp_path / "store", image=str(bad)).pre_create_check()
    _one_line(e.value)
    tiny = tmp_path / "notes.txt"
    tiny.write_text("hello")  # any file is a "raw" image to qemu-img; a tiny one is no disk
    with pytest.raises(UsageError, match="not a disk image"):
        make_driver(tmp_path / "store", image=str(tiny)).pre_create_check()
    assert tree(tmp_path / "store") == []


@needs_qemu
def test_url_image_is_downloaded_once(tmp_path, small_image):
    store = tmp_path / "store"
    d = make_driver(store, image=small_image.as_uri())
    d.pre_create_check()
    path = d._download(small_image.as_uri())
    import hashlib

    assert Path(path) == store / "cache" / "downloads" / hashlib.sha256(small_image.as_uri().encode()).hexdigest()
    mtime = os.stat(path).st_mtime_ns
    small_image.unlink()  # a second create must not fetch again
    assert d._download(small_image.as_uri()) == path and os.stat(path).st_mtime_ns == mtime
    with pytest.raises(MachineError, match="cannot download"):
        d._download((tmp_path / "gone.img").as_uri())


# ---- the driver: records, state of a machine that is not running ---------------------------

def test_stopped_machine_state_and_idempotent_remove(tmp_path):
    d = make_driver(tmp_path)
    Path(d.machine_dir).mkdir(parents=True)
    (Path(d.machine_dir) / "qemu.pid").write_text(str(os.getpid()))  # a live pid that is not QEMU
    assert d.state() == State.STOPPED
    assert "QEMU process is gone" in d.stopped_reason() and "console.log" in d.stopped_reason()
    d.remove()
    d.remove()
    assert os.listdir(d.machine_dir) == []
    d.kill()
    d.stop()


def test_addresses_and_endpoints(tmp_path):
    d = make_driver(tmp_path)
    d.config.ssh_port, d.config.engine_port, d.config.ssh_key_path = 40022, 40376, "/k"
    assert d.ip() == "127.0.0.1"
    assert d.engine_endpoint(2376) == ("127.0.0.1", 40376)
    ep = d.ssh_endpoint()
    assert (ep.host, ep.port, ep.user, ep.key_path) == ("127.0.0.1", 40022, "root", "/k")
    assert d.addresses() == ["127.0.0.1"] and d.private_address() is None
    d.config.private_ip_address = "192.168.77.12"
    assert d.addresses() == ["127.0.0.1", "192.168.77.12"]
    assert d.private_address() == "192.168.77.12"


def test_ssh_key_is_private_and_loads(tmp_path):
    import paramiko

    d = make_driver(tmp_path)
    Path(d.machine_dir).mkdir(parents=True)
    pub = d._make_key()
    key = Path(d.config.ssh_key_path)
    assert key.stat().st_mode & 0o777 == 0o600
    loaded = paramiko.Ed25519Key.from_private_key_file(str(key))
    assert pub.split()[1] == loaded.get_base64()
    assert [e["kind"] for e in d.journal] == ["ssh-key"]


@needs_qemu
@pytest.mark.skipif(not shutil.which("vde_switch"), reason="vde2 not installed")
def test_real_create_state_stop_start_remove_without_a_guest_os(tmp_path, small_image):
    """A real QEMU on an empty disk (the firmware finds nothing to boot): every driver
    call but SSH, in about a second. Files, ports, the switch and the process all go on remove."""
    store = tmp_path / "store"
    d = make_driver(store, "real1", image=str(small_image), network="unitnet", memory=128, stop_timeout=1)
    d.pre_create_check()
    Path(d.machine_dir).mkdir(parents=True)
    d.create()
    try:
        pid = d.pid()
        assert pid and d.state() == State.RUNNING and d.stopped_reason() is None
        cfg = d.config
        assert cfg.ip_address == "127.0.0.1" and cfg.kernel == "" and cfg.image_format == "qcow2"
        assert not ports.port_free(cfg.ssh_port) and not ports.port_free(cfg.engine_port)
        assert cfg.private_ip_address == "192.168.77.10"
        assert {e["kind"] for e in d.journal} >= {"ssh-key", "network-lease", "disk", "seed", "qemu-process"}
        cmd = process._cmdline(pid)
        assert "restrict=on" in cmd and f"hostfwd=tcp:127.0.0.1:{cfg.ssh_port}-:22" in cmd
        assert "-kernel" not in cmd and "vde,id=priv0" in cmd
        label, files = seed.read_iso(Path(d.machine_dir) / "seed.iso")
        assert label == "cidata" and cfg.nat_mac in files["network-config"]

        d.stop()  # no ACPI listener: waits stop-timeout, then kills
        assert d.state() == State.STOPPED and not process.pid_alive(pid)
        ssh_port = cfg.ssh_port
        d.start()
        assert d.state() == State.RUNNING and cfg.ssh_port == ssh_port
        d.kill()
        assert d.state() == State.STOPPED and "QEMU process is gone" in d.stopped_reason()
        d.start()
        pid = d.pid()
    finally:
        d.remove()
    assert not process.pid_alive(pid)
    assert os.listdir(d.machine_dir) == []
    assert not (d.ctx.shared_dir / "networks" / "unitnet").exists()
    assert ports.port_free(ssh_port)
    d.remove()
