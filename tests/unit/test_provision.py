"""Provisioning pieces that need no VM: os-release, families, facts, templates, change detection.

The bootstrap scripts are run for real with the host's /bin/sh (dash) where that is
harmless (facts.sh reads only; write_script writes into a temp folder).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from machine.model import Host
from machine.provision import facts as F
from machine.provision import render
from machine.provision.provisioners import (DebianProvisioner, GenericSystemdProvisioner, RedHatProvisioner,
                                            SuseProvisioner, provisioner_for)

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap"

OS_RELEASES = {
    "debian-12": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                  'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n', "debian", "12"),
    "ubuntu-22.04": ('NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
                     'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nVERSION_CODENAME=jammy\n', "debian", "22.04"),
    "rocky-9": ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n', "redhat", "9.3"),
    "alma-9": ('ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n', "redhat", "9.4"),
    "centos-stream": ('ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n', "redhat", "9"),
    "rhel-9": ('ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n', "redhat", "9.4"),
    "fedora-40": ("ID=fedora\nVERSION_ID=40\n", "redhat", "40"),
    "amzn-2023": ('NAME="Amazon Linux"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n', "redhat", "2023"),
    "sles-15": ('NAME="SLES"\nID="sles"\nID_LIKE="suse"\nVERSION_ID="15.5"\n', "suse", "15.5"),
    "leap-15": ('NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.5"\n',
                "suse", "15.5"),
    "tumbleweed": ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\nVERSION_ID="20240101"\n', "suse", "20240101"),
    "mint": ('ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.3"\n', "debian", "21.3"),
    "derivative-by-like": ('ID=someos\nID_LIKE="rhel fedora"\nVERSION_ID=1\n', "redhat", "1"),
    "alpine": ("ID=alpine\nVERSION_ID=3.19.1\n", None, "3.19.1"),
}


@pytest.mark.parametrize("name", sorted(OS_RELEASES))
def test_os_release_family(name):
    text, family, version = OS_RELEASES[name]
    info = F.os_info(text)
    assert info.family == family
    assert info.version_id == version


def test_os_release_quoting_comments_and_junk():
    d = F.parse_os_release("# comment\n\nNAME='Foo Linux'\nPRETTY_NAME=\"Foo \\\"X\\\" 1\"\nBROKEN\n"
                           "ID=foo\nbad key=1\nVERSION_ID=\"1.0\"\nUNTERMINATED=\"x\n")
    assert d["NAME"] == "Foo Linux"
    assert d["PRETTY_NAME"] == 'Foo "X" 1'
    assert d["ID"] == "foo" and d["VERSION_ID"] == "1.0"
    assert d["UNTERMINATED"] == "x"
    assert "BROKEN" not in d and "bad key" not in d


def test_os_slug_and_name():
    info = F.os_info(OS_RELEASES["debian-12"][0])
    assert info.slug == "debian-12"
    assert info.name == "Debian GNU/Linux 12 (bookworm)"


@pytest.mark.parametrize("name,cls", [("debian-12", DebianProvisioner), ("ubuntu-22.04", DebianProvisioner),
                                      ("rocky-9", RedHatProvisioner), ("amzn-2023", RedHatProvisioner),
                                      ("leap-15", SuseProvisioner), ("alpine", GenericSystemdProvisioner)])
def test_provisioner_per_family(name, cls):
    facts = F.Facts(os=F.os_info(OS_RELEASES[name][0]))
    assert type(provisioner_for(facts)) is cls


def test_bundle_type_checked_against_family():
    from machine.errors import MachineError

    deb = provisioner_for(F.Facts(os=F.os_info(OS_RELEASES["debian-12"][0])))
    rpm = provisioner_for(F.Facts(os=F.os_info(OS_RELEASES["fedora-40"][0])))
    deb.check_bundle(["docker.io_20.10_amd64.deb", "manifest.json"])
    rpm.check_bundle(["moby-engine-24.rpm"])
    with pytest.raises(MachineError, match="no .rpm packages"):
        rpm.check_bundle(["docker.io_20.10_amd64.deb"])
    with pytest.raises(MachineError, match="no .deb or .rpm"):
        deb.check_bundle(["README"])


FACTS_OUTPUT = """\
cloud_init=1
cloud_init_wait_rc=0
cloud_init_wait_s=12
cloud_init_status=done
os:PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os:ID=debian
os:VERSION_ID="12"
arch=x86_64
kernel=6.1.0-18-amd64
hostname=node1
user=root
systemd=1
has:apt-get=1
has:dpkg=1
pm_busy=
dockerd=/usr/sbin/dockerd
dockerd_version=Docker version 20.10.24+dfsg1, build 5d6db84
docker_active=active
docker_enabled=enabled
unit_path=/lib/systemd/system/docker.service
unit:[Unit]
unit:Description=Docker Application Container Engine
unit:[Service]
unit:Type=notify
unit:EnvironmentFile=-/etc/default/docker
unit:ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS
unit:ExecReload=/bin/kill -s HUP $MAINPID
swarm=inactive
hash:/etc/docker/daemon.json=abc123
hash:/etc/docker/ca.pem=
"""


def test_parse_facts():
    f = F.parse_facts(FACTS_OUTPUT)
    assert f.os.id == "debian" and f.family == "debian"
    assert f.cloud_init and f.cloud_init_status == "done" and f.cloud_init_wait_s == 12
    assert f.systemd and f.tools == {"apt-get", "dpkg"}
    assert f.engine_installed and f.engine_running and f.engine_version == "20.10.24+dfsg1"
    assert f.hashes == {"/etc/docker/daemon.json": "abc123", "/etc/docker/ca.pem": ""}
    assert f.exec_start() == ["/usr/sbin/dockerd", "$DOCKER_OPTS"]
    assert not f.in_swarm
    assert F.parse_facts(FACTS_OUTPUT.replace("swarm=inactive", "swarm=active")).in_swarm


def test_parse_facts_no_engine_and_broken_dpkg():
    f = F.parse_facts("os:ID=ubuntu\nos:ID_LIKE=debian\ndockerd=/usr/bin/dockerd\ndpkg_broken=1\nsystemd=0\n")
    assert f.family == "debian"
    assert not f.engine_installed  # a half-configured package is re-installed
    assert not f.systemd
    f = F.parse_facts("os:ID=debian\ndockerd=\n")
    assert not f.engine_installed and f.exec_start() == ["/usr/bin/dockerd"]


@pytest.mark.parametrize("unit,expected", [
    ("[Service]\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n",
     ["/usr/bin/dockerd", "--containerd=/run/containerd/containerd.sock"]),
    ("[Service]\nExecStart=/usr/bin/dockerd --host=fd:// \\\n  --containerd=/run/c.sock\n",
     ["/usr/bin/dockerd", "--containerd=/run/c.sock"]),
    ("[Service]\nExecStart=-/usr/bin/dockerd-current -H=fd:// $OPTIONS $DOCKER_STORAGE_OPTIONS\n",
     ["/usr/bin/dockerd-current", "$OPTIONS", "$DOCKER_STORAGE_OPTIONS"]),
    ("[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd://\n", ["/usr/sbin/dockerd"]),
    ("[Unit]\nExecStart=/not/this\n[Service]\nExecStart=/usr/bin/dockerd\n", ["/usr/bin/dockerd"]),
    ("", ["/usr/local/bin/dockerd"]),
    ("[Service]\nExecStart=/usr/bin/something-else\n", ["/usr/local/bin/dockerd"]),
])
def test_vendor_exec_start(unit, expected):
    assert F.vendor_exec_start(unit, "/usr/local/bin/dockerd") == expected


# --------------------------------------------------------------------------- templates


def make_host(**engine) -> Host:
    h = Host(name="node1", driver_name="qemu")
    for k, v in engine.items():
        setattr(h.engine, k, v)
    return h


def test_daemon_json_defaults():
    doc = json.loads(render.render_daemon_json(make_host(), provider="qemu"))
    assert doc == {
        "tls": True, "tlsverify": True,
        "tlscacert": "/etc/docker/ca.pem", "tlscert": "/etc/docker/server.pem",
        "tlskey": "/etc/docker/server-key.pem",
        "live-restore": True, "labels": ["provider=qemu"],
    }
    assert "hosts" not in doc  # listen addresses belong to the drop-in


def test_daemon_json_all_options_and_awkward_values():
    host = make_host(labels=["env=prod", 'quote="x"'], insecure_registry=["10.0.0.1:5000"],
                     registry_mirror=["https://mirror.example/a?b=1&c=<2>"], storage_driver="overlay2",
                     log_level="debug", graph_dir="/data/docker", dns=["1.1.1.1"], ipv6=True,
                     selinux_enabled=True, live_restore=False, tls_verify=True)
    doc = json.loads(render.render_daemon_json(host, provider="generic"))
    assert doc["labels"] == ["env=prod", 'quote="x"', "provider=generic"]
    assert doc["insecure-registries"] == ["10.0.0.1:5000"]
    assert doc["registry-mirrors"] == ["https://mirror.example/a?b=1&c=<2>"]
    assert doc["storage-driver"] == "overlay2" and doc["log-level"] == "debug"
    assert doc["data-root"] == "/data/docker" and doc["dns"] == ["1.1.1.1"]
    assert doc["ipv6"] is True and doc["selinux-enabled"] is True
    assert doc["live-restore"] is False
    # a user's provider label wins over ours
    doc = json.loads(render.render_daemon_json(make_host(labels=["provider=mine"]), provider="qemu"))
    assert doc["labels"] == ["provider=mine"]
    # swarm nodes get live-restore off whatever the record says
    doc = json.loads(render.render_daemon_json(make_host(), provider="qemu", live_restore=False))
    assert doc["live-restore"] is False


def test_dropin_content():
    host = make_host(port=2377, env=["HTTP_PROXY=http://proxy:3128", "NO_PROXY=a b,100%"],
                     arbitrary_flags=["default-ulimit=nofile=1024:2048", "--debug", "icc=false"])
    text = render.render_dropin(host, exec_start=["/usr/sbin/dockerd", "$DOCKER_OPTS"])
    lines = text.splitlines()
    assert lines[0].startswith("# Written by machine for node1")
    assert lines[1] == "[Service]"
    assert 'Environment=HTTP_PROXY=http://proxy:3128' in lines
    assert 'Environment="NO_PROXY=a b,100%%"' in lines
    i = lines.index("ExecStart=")
    assert lines[i + 1] == ("ExecStart=/usr/sbin/dockerd $DOCKER_OPTS -H unix:///var/run/docker.sock "
                            "-H tcp://0.0.0.0:2377 --default-ulimit=nofile=1024:2048 --debug --icc=false")
    assert "fd://" not in text
    assert text.endswith("\n")


def test_dropin_parses_with_systemd_analyze(tmp_path):
    import shutil

    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    unit = tmp_path / "docker.service"
    unit.write_text("[Unit]\nDescription=x\n[Service]\nType=simple\nExecStart=/bin/true -H fd://\n")
    dropin = tmp_path / "docker.service.d"
    dropin.mkdir()
    text = render.render_dropin(make_host(env=["A=b c"]), exec_start=["/bin/true"])
    (dropin / "10-machine.conf").write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert "10-machine.conf" not in r.stderr, r.stderr


def _files(**kw):
    defaults = dict(provider="qemu", exec_start=["/usr/sbin/dockerd"], ca_pem=b"CA", cert_pem=b"CERT",
                    key_pem=b"KEY")
    defaults.update(kw)
    host = defaults.pop("host", make_host())
    return render.desired_files(host, **defaults)


def test_change_detection():
    files = _files()
    assert [f.path for f in files] == list(render.MANAGED)
    assert {f.path: f.mode for f in files}[render.REMOTE_KEY] == 0o600
    # nothing on the host yet: everything changes
    assert render.changed(files, {}) == files
    same = {f.path: f.sha256 for f in files}
    assert render.changed(files, same) == []
    # one engine option differs -> only daemon.json changes
    files2 = _files(host=make_host(labels=["a=b"]))
    assert [f.path for f in render.changed(files2, same)] == [render.DAEMON_JSON]
    # a new server cert -> only the cert
    files3 = _files(cert_pem=b"CERT2")
    assert [f.path for f in render.changed(files3, same)] == [render.REMOTE_CERT]
    # rendering is deterministic
    assert [f.sha256 for f in _files()] == [f.sha256 for f in files]


def test_write_script_writes_atomically_with_modes(tmp_path):
    files = [render.RemoteFile(str(tmp_path / "etc/docker/server-key.pem"), b"secret\n", 0o600),
             render.RemoteFile(str(tmp_path / "etc/docker/daemon.json"), b'{"a": "\'quoted\'"}\n', 0o644),
             render.RemoteFile(str(tmp_path / "bin.dat"), bytes(range(256)), 0o640)]
    script = render.write_script(files)
    subprocess.run(["sh", "-s"], input=script.encode(), check=True)
    for f in files:
        p = Path(f.path)
        assert p.read_bytes() == f.data
        assert stat.S_IMODE(p.stat().st_mode) == f.mode
        assert render.sha256(p.read_bytes()) == f.sha256
    assert not list(tmp_path.rglob("*.machine-tmp"))
    assert "daemon-reload" not in script
    assert "daemon-reload" in render.write_script([render.RemoteFile(render.DROPIN, b"x", 0o644)])


# --------------------------------------------------------------------------- bootstrap scripts


@pytest.mark.parametrize("name", sorted(p.name for p in BOOTSTRAP.glob("*.sh")))
def test_bootstrap_scripts_are_posix_sh(name):
    script = render.bootstrap_script(name)
    r = subprocess.run(["sh", "-n"], input=script.encode(), capture_output=True)
    assert r.returncode == 0, r.stderr.decode()


def test_facts_script_runs_here_and_parses(tmp_path):
    """facts.sh only reads; run it on this host with its real /bin/sh."""
    present = tmp_path / "present"
    present.write_bytes(b"hello")
    script = render.bootstrap_script("facts.sh")
    r = subprocess.run(["sh", "-s", "--", str(present), str(tmp_path / "absent")], input=script.encode(),
                       capture_output=True, env={**os.environ, "MACHINE_WAIT_CLOUD_INIT": "0"}, timeout=60)
    assert r.returncode == 0, r.stderr
    f = F.parse_facts(r.stdout.decode())
    assert f.os.id == F.os_info(Path("/etc/os-release").read_text()).id
    assert f.arch == os.uname().machine
    assert f.hashes == {str(present): render.sha256(b"hello"), str(tmp_path / "absent"): ""}
    assert f.user == "root" or f.user


def test_pm_busy_and_exit_codes(tmp_path):
    script = render.bootstrap_script("common.sh", common=False) + "\npm_busy\nneed_dockerd\n"
    env = {**os.environ, "PATH": str(tmp_path)}  # no dockerd anywhere on this PATH
    r = subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, env=env)
    assert r.returncode == 30
    assert b"no dockerd" in r.stderr


def test_server_cert_sans_and_check(tmp_path):
    from fakes import FakeConfig, FakeDriver
    from machine import certs
    from machine.driver import DriverContext
    from machine.provision.core import server_cert_ok, server_cert_sans

    class D(FakeDriver):
        def engine_endpoint(self, port):
            return "127.0.0.1", 12376

        def private_address(self):
            return "192.168.77.11"

    d = D(FakeConfig(ip_address="10.0.2.15"), DriverContext.scratch("node1", tmp_path / "node1"))
    host = make_host()
    host.auth.server_cert_sans = ["docker.example.com", "10.0.2.15"]
    facts = F.Facts(os=F.os_info("ID=debian"), hostname="node1-vm")
    sans = server_cert_sans(host, d, facts)
    assert sans == ["10.0.2.15", "127.0.0.1", "192.168.77.11", "docker.example.com", "node1-vm", "node1"]

    certs.generate_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    paths = {"ca": tmp_path / "ca.pem", "ca_key": tmp_path / "ca-key.pem",
             "server": tmp_path / "server.pem", "server_key": tmp_path / "server-key.pem"}
    assert not server_cert_ok(paths, sans)
    certs.generate_server_cert(paths["ca"], paths["ca_key"], paths["server"], paths["server_key"],
                               common_name="node1", sans=sans)
    assert server_cert_ok(paths, sans)
    assert not server_cert_ok(paths, sans + ["10.9.9.9"])       # a new address -> regenerate
    certs.generate_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")  # a new CA -> regenerate
    assert not server_cert_ok(paths, sans)


# --------------------------------------------------------------------------- install retries, over real SSH
# install-script.sh runs here through the test sshd with a file:// URL to a fake install
# script; it never installs anything on this machine (the fake scripts only print and exit).


@pytest.fixture
def local_conn(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("needs root and /usr/sbin/sshd")
    from test_ssh import Sshd

    from machine import ssh

    (tmp_path / "sshd").mkdir()
    d = Sshd(tmp_path / "sshd")
    d.start()
    conn = ssh.connect(d.endpoint(), tmp_path / "known_hosts", pin=True)
    yield conn
    conn.close()
    d.stop()


def _install(conn, tmp_path, script_body: str, monkeypatch):
    import shutil

    from machine.provision import core

    if shutil.which("dockerd"):
        pytest.skip("this machine has a dockerd; the fake install would be skipped")
    fake = tmp_path / "fake-install.sh"
    fake.write_text(script_body)
    counter = tmp_path / "runs"
    host = make_host(install="script", install_url=f"file://{fake}")
    facts = F.parse_facts("os:ID=debian\nsystemd=1\ndockerd=\n")
    monkeypatch.setattr(core, "RETRY_SLEEP_S", 0.0)
    t0 = time.monotonic()
    with pytest.raises(Exception) as ei:
        core._install_engine(conn, host, provisioner_for(facts), facts, "script", upgrade=False)
    runs = len(counter.read_text().splitlines()) if counter.exists() else 0
    return ei.value, runs, time.monotonic() - t0


def test_script_exit_0_without_dockerd_is_not_retried(local_conn, tmp_path, monkeypatch):
    from machine.errors import MachineError

    err, runs, took = _install(local_conn, tmp_path, f"echo run >> {tmp_path}/runs\nexit 0\n", monkeypatch)
    assert isinstance(err, MachineError)
    assert runs == 1
    assert "left no dockerd" in str(err) and "attempt 1 of 3" in str(err)


def test_failing_install_is_retried_on_its_exit_code(local_conn, tmp_path, monkeypatch):
    err, runs, _ = _install(local_conn, tmp_path,
                            f"echo run >> {tmp_path}/runs\necho 'E: mirror broke' >&2\nexit 1\n", monkeypatch)
    assert runs == 3
    assert "package install failed" in str(err) and "attempt 3 of 3" in str(err)
    assert "mirror broke" in str(err)


def test_download_failure_is_retried(local_conn, tmp_path, monkeypatch):
    from machine.provision import core

    host = make_host(install="script", install_url=f"file://{tmp_path}/missing.sh")
    facts = F.parse_facts("os:ID=debian\nsystemd=1\ndockerd=\n")
    monkeypatch.setattr(core, "RETRY_SLEEP_S", 0.0)
    with pytest.raises(Exception) as ei:
        core._install_engine(local_conn, host, provisioner_for(facts), facts, "script", upgrade=False)
    assert "download failed" in str(ei.value) and "attempt 3 of 3" in str(ei.value)
