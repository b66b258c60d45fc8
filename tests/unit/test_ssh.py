"""machine.ssh against a real OpenSSH sshd on 127.0.0.1 (no mocks).

The fixture starts /usr/sbin/sshd -D with a temp config, host key and
authorized_keys; tests that need a new host key restart it on the same port.
"""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh-keygen") and os.geteuid() == 0),
    reason="needs /usr/sbin/sshd, ssh-keygen and root",
)

from machine.driver import SSHEndpoint  # noqa: E402
from machine.errors import HostKeyMismatch, MachineError  # noqa: E402


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def keygen(path: Path, kind: str = "ed25519") -> Path:
    if path.exists():
        path.unlink()
        Path(str(path) + ".pub").unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path


class Sshd:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.host_key = keygen(root / "host_ed25519")
        self.client_key = keygen(root / "id_ed25519")
        self.authorized = root / "authorized_keys"
        self.authorized.write_text((root / "id_ed25519.pub").read_text())
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None

    def config(self) -> Path:
        cfg = self.root / "sshd_config"
        cfg.write_text(f"""
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.root}/sshd.pid
AuthorizedKeysFile {self.authorized}
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel VERBOSE
MaxStartups 100
""")
        return cfg

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config())],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited: " + self.log.read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def new_host_key(self) -> None:
        self.stop()
        keygen(self.host_key)
        self.start()

    def endpoint(self, key: Path | None = None, user: str = "root") -> SSHEndpoint:
        return SSHEndpoint("127.0.0.1", self.port, user, str(key or self.client_key))

    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-lf", str(self.host_key) + ".pub"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]


@pytest.fixture
def sshd(tmp_path):
    d = Sshd(tmp_path)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def conn(sshd, tmp_path):
    from machine import ssh

    c = ssh.connect(sshd.endpoint(), tmp_path / "known_hosts", pin=True)
    yield c
    c.close()


def test_run_stdout_status_and_locale(conn):
    r = conn.run("echo hello; echo oops >&2; echo $LANG $LC_ALL")
    assert r.exit_status == 0
    assert r.stdout.splitlines() == ["hello", "C C"]
    assert r.stderr.strip() == "oops"
    assert conn.round_trips == 1


def test_run_check_failure_carries_stderr_tail_and_status(conn):
    from machine.ssh import CommandFailed

    r = conn.run("echo bad >&2; exit 3", check=False)
    assert r.exit_status == 3
    with pytest.raises(CommandFailed) as ei:
        conn.run("for i in $(seq 1 40); do echo line$i >&2; done; exit 7")
    e = ei.value
    assert e.exit_status == 7
    assert "exit 7" in str(e) and "line40" in str(e) and "line1\n" not in str(e)


def test_run_input_env_and_quoting(conn):
    r = conn.run("cat; printf '%s' \"$FOO\"", input=b"in-data|", env={"FOO": "a b 'c' $x"})
    assert r.stdout == "in-data|a b 'c' $x"


def test_run_large_output_and_input_do_not_deadlock(conn):
    data = os.urandom(3 * 1024 * 1024)
    r = conn.run("wc -c; head -c 2000000 /dev/zero | tr '\\0' x", input=data)
    assert r.stdout.startswith(str(len(data)))
    assert r.stdout.count("x") == 2000000


def test_run_timeout(conn):
    from machine.ssh import CommandTimeout

    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        conn.run("sleep 30", timeout=1)
    assert time.monotonic() - t0 < 5
    assert conn.run("echo still-usable").stdout.strip() == "still-usable"


def test_run_script_is_one_round_trip(conn, tmp_path):
    target = tmp_path / "script-out"
    script = f"""set -e
a=1
b=$((a + 1))
echo "first $a" > {target}
echo "second $b" >> {target}
if [ -n "$1" ]; then echo "arg $1"; fi
cat {target}
"""
    before = conn.round_trips
    r = conn.run_script(script, args=["x y"])
    assert conn.round_trips - before == 1
    assert r.stdout.splitlines() == ["arg x y", "first 1", "second 2"]


def test_run_script_set_e_failure(conn):
    from machine.ssh import CommandFailed

    with pytest.raises(CommandFailed) as ei:
        conn.run_script("set -e\necho start\nfalse\necho never\n")
    assert ei.value.exit_status == 1
    assert "never" not in ei.value.result.stdout


def test_put_bytes_str_and_path_with_modes(conn, tmp_path):
    dst = tmp_path / "remote"
    dst.mkdir()
    conn.put(b"secret\n", str(dst / "key.pem"), 0o600)
    conn.put("text\n", str(dst / "a.txt"))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2 * 1024 * 1024 + 17))
    conn.put(src, str(dst / "big.bin"), 0o640)
    assert (dst / "key.pem").read_bytes() == b"secret\n"
    assert stat.S_IMODE((dst / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((dst / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((dst / "big.bin").stat().st_mode) == 0o640
    assert (dst / "big.bin").read_bytes() == src.read_bytes()
    # overwrite in place keeps working and leaves no temp file behind
    conn.put(b"new\n", str(dst / "key.pem"), 0o600)
    assert (dst / "key.pem").read_bytes() == b"new\n"
    assert sorted(p.name for p in dst.iterdir()) == ["a.txt", "big.bin", "key.pem"]


def test_put_into_missing_dir_is_a_machine_error(conn, tmp_path):
    with pytest.raises(MachineError) as ei:
        conn.put(b"x", str(tmp_path / "nope" / "f"))
    assert "nope" in str(ei.value)


def test_pin_on_first_contact_then_changed_key_refused(sshd, tmp_path):
    from machine import ssh

    kh = tmp_path / "kh" / "known_hosts"
    kh.parent.mkdir()
    c = ssh.connect(sshd.endpoint(), kh, pin=True)
    assert c.pinned and c.host_key_fingerprint == sshd.fingerprint()
    c.close()
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    # OpenSSH itself reads the file we wrote
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(kh)],
                           capture_output=True, text=True)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    # second contact: key known, matches, nothing re-pinned (pin=False is fine now)
    c = ssh.connect(sshd.endpoint(), kh, pin=False)
    assert not c.pinned
    c.close()
    old_fp = sshd.fingerprint()

    sshd.new_host_key()
    hint = "if the host was re-created on purpose run: machine ssh-keys reset m1"
    for pin in (False, True):  # pin never overrides a recorded key
        with pytest.raises(HostKeyMismatch) as ei:
            ssh.connect(sshd.endpoint(), kh, pin=pin, hint=hint)
        e = ei.value
        assert str(e).startswith(f"host key for 127.0.0.1:{sshd.port} changed")
        assert e.hint == hint
        assert any(old_fp in f for f in e.expected_fingerprints)
        assert sshd.fingerprint() in e.presented_fingerprint
        assert old_fp in e.debug and sshd.fingerprint() in e.debug
    # wait_for_ssh fails fast on it too
    t0 = time.monotonic()
    with pytest.raises(HostKeyMismatch):
        ssh.wait_for_ssh(sshd.endpoint(), kh, deadline_s=30, pin=True)
    assert time.monotonic() - t0 < 5


def test_unknown_host_without_pin_is_refused(sshd, tmp_path):
    from machine import ssh

    with pytest.raises(ssh.UnknownHostKey):
        ssh.connect(sshd.endpoint(), tmp_path / "known_hosts", pin=False)
    assert not (tmp_path / "known_hosts").exists()


def test_auth_failure_fails_fast(sshd, tmp_path):
    from machine import ssh

    wrong = keygen(tmp_path / "wrong_key")
    t0 = time.monotonic()
    with pytest.raises(ssh.AuthFailed) as ei:
        ssh.wait_for_ssh(sshd.endpoint(wrong), tmp_path / "known_hosts", deadline_s=60, pin=True)
    assert time.monotonic() - t0 < 5
    assert "authentication failed for root@127.0.0.1" in str(ei.value)


def test_wait_for_ssh_reports_connection_refused_within_deadline(tmp_path):
    from machine import ssh

    port = free_port()  # nothing listens here
    t0 = time.monotonic()
    with pytest.raises(MachineError) as ei:
        ssh.wait_for_ssh(SSHEndpoint("127.0.0.1", port, "root", None), tmp_path / "kh",
                         deadline_s=2, pin=True, interval=0.3)
    took = time.monotonic() - t0
    assert 2 <= took < 15  # waits out its deadline, then gives up (not the 60 s a loop without one takes)
    assert "last error: connection refused" in str(ei.value)


def test_wait_for_ssh_fails_at_once_when_the_host_is_gone(tmp_path):
    """A VM that died while we wait for its sshd fails at the next probe, not at the deadline;
    the probe is asked no more often than gone_every_s, and only while retrying."""
    from machine import ssh

    port = free_port()  # nothing listens here
    asked = []

    def gone():
        asked.append(time.monotonic())
        return "its QEMU process is gone" if len(asked) >= 2 else None

    t0 = time.monotonic()
    with pytest.raises(MachineError) as ei:
        ssh.wait_for_ssh(SSHEndpoint("127.0.0.1", port, "root", None), tmp_path / "kh", deadline_s=120,
                         pin=True, interval=0.1, gone=gone, gone_every_s=0.5)
    assert time.monotonic() - t0 < 10
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.5
    msg = str(ei.value)
    assert f"SSH to root@127.0.0.1:{port} cannot answer: its QEMU process is gone" in msg
    assert "last error: connection refused" in msg


def test_wait_for_ssh_a_failing_probe_proves_nothing(tmp_path):
    from machine import ssh

    def gone():
        raise RuntimeError("the cloud API is down")

    with pytest.raises(MachineError) as ei:
        ssh.wait_for_ssh(SSHEndpoint("127.0.0.1", free_port(), "root", None), tmp_path / "kh", deadline_s=1.5,
                         pin=True, interval=0.1, gone=gone, gone_every_s=0.2)
    assert "not ready after 1.5s" in str(ei.value)  # waited out its deadline as without a probe


def test_wait_for_ssh_succeeds_when_sshd_comes_up_late(sshd, tmp_path):
    import threading

    from machine import ssh

    sshd.stop()
    threading.Timer(1.5, sshd.start).start()
    attempts = []
    t0 = time.monotonic()
    c = ssh.wait_for_ssh(sshd.endpoint(), tmp_path / "kh", deadline_s=20, pin=True, interval=0.3,
                         on_attempt=lambda n, err: attempts.append(err))
    assert time.monotonic() - t0 < 10
    assert attempts and attempts[0] == "connection refused"
    assert c.run("echo up").stdout.strip() == "up"
    c.close()


def test_connection_counter_and_keepalive(sshd, tmp_path):
    from machine import ssh

    before = ssh.stats["connections"]
    c = ssh.connect(sshd.endpoint(), tmp_path / "kh", pin=True)
    for i in range(3):
        c.run(f"echo {i}")
    c.put(b"x", str(tmp_path / "x"))
    assert ssh.stats["connections"] - before == 1
    assert c.transport.packetizer._Packetizer__keepalive_interval == ssh.KEEPALIVE_S
    c.close()


def test_connection_lost_mid_command(conn):
    from machine.ssh import ConnectionLost

    # kill this session's sshd process: the transport drops under the command
    with pytest.raises(ConnectionLost) as ei:
        conn.run("kill -9 $PPID; sleep 5")
    assert "lost" in str(ei.value)


def test_fingerprint_matches_openssh(sshd):
    import paramiko

    from machine.ssh import fingerprint

    key = paramiko.PKey.from_path(str(sshd.host_key))
    assert fingerprint(key) == sshd.fingerprint()


# --------------------------------------------------------------------------- CLI: ssh / scp

from fakes import FakeDriver  # noqa: E402
from machine.driver import Capabilities, register_driver  # noqa: E402
from machine.model import State  # noqa: E402


class LoopbackDriver(FakeDriver):
    """A machine that is just the fixture's sshd."""

    name = "sshtest"
    capabilities = Capabilities()

    def state(self):
        return State.RUNNING


@pytest.fixture
def store_with_machine(sshd, tmp_path):
    from machine.model import Host
    from machine.store import Store

    register_driver("sshtest", LoopbackDriver)
    store = Store(tmp_path / "store")
    store.reserve("m1")
    store.save(Host(name="m1", driver_name="sshtest",
                    driver={"IPAddress": "127.0.0.1", "SSHPort": sshd.port, "SSHUser": "root",
                            "SSHKeyPath": str(sshd.client_key)}))
    yield store
    register_driver("sshtest", None)


def cli(store, *args) -> int:
    from machine.cli.main import main

    return main(["-s", str(store.path), *args])


def test_cli_ssh_runs_command_and_returns_its_status(store_with_machine, capfd):
    store = store_with_machine
    assert cli(store, "ssh", "m1", "--", "echo", "hi", "there;", "echo", "err", ">&2") == 0
    out, err = capfd.readouterr()
    assert out == "hi there\n" and err == "err\n"
    # first contact pinned the key into the machine's own known_hosts
    assert (store.machine_dir("m1") / "known_hosts").exists()
    assert cli(store, "ssh", "m1", "exit 5") == 5


def test_cli_ssh_refuses_changed_host_key_with_hint(store_with_machine, sshd, capfd):
    store = store_with_machine
    assert cli(store, "ssh", "m1", "true") == 0
    sshd.new_host_key()
    capfd.readouterr()
    assert cli(store, "ssh", "m1", "true") == 1
    err = capfd.readouterr().err
    assert f"host key for 127.0.0.1:{sshd.port} changed" in err
    assert "machine ssh-keys reset m1" in err


def test_cli_ssh_unknown_machine(store_with_machine, capfd):
    assert cli(store_with_machine, "ssh", "nope", "true") == 1
    assert "does not exist" in capfd.readouterr().err


def test_cli_scp_files_and_dirs_both_ways(store_with_machine, tmp_path, capfd):
    store = store_with_machine
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "sub" / "b.sh", 0o755)
    remote = tmp_path / "remote"
    remote.mkdir()
    # file into an existing remote dir
    assert cli(store, "scp", "-q", str(src / "a.txt"), f"m1:{remote}") == 0
    assert (remote / "a.txt").read_text() == "A"
    # a dir needs -r
    assert cli(store, "scp", str(src), f"m1:{remote}") == 1  # docker-machine: exit 1 on every error
    assert "pass -r" in capfd.readouterr().err
    assert cli(store, "scp", "-r", str(src), f"m1:{remote}") == 0
    assert (remote / "src" / "sub" / "b.sh").read_text() == "#!/bin/sh\n"
    assert stat.S_IMODE((remote / "src" / "sub" / "b.sh").stat().st_mode) == 0o755
    # and back
    back = tmp_path / "back"
    assert cli(store, "scp", "-r", f"m1:{remote / 'src'}", str(back)) == 0
    assert (back / "sub" / "b.sh").read_text() == "#!/bin/sh\n"
    assert stat.S_IMODE((back / "sub" / "b.sh").stat().st_mode) == 0o755
    assert cli(store, "scp", f"m1:{remote / 'missing'}", str(back)) == 1


def test_scp_target_parsing():
    from machine.transfer import Target, parse_target

    machines = {"m1"}
    assert parse_target("m1:/etc/hosts", machines.__contains__) == Target("m1", "/etc/hosts")
    assert parse_target("m1:~/x", machines.__contains__) == Target("m1", "x")
    assert parse_target("m1:", machines.__contains__) == Target("m1", ".")
    assert parse_target("other:/x", machines.__contains__) == Target(None, "other:/x")
    assert parse_target("./m1:x", machines.__contains__) == Target(None, "./m1:x")
    assert parse_target("/tmp/file", machines.__contains__) == Target(None, "/tmp/file")


def test_ssh_keys_show_and_reset_accepts_the_new_key(store_with_machine, sshd, capfd, monkeypatch):
    from machine.cli import main as main_mod

    monkeypatch.setitem(main_mod.COMMANDS, "ssh-keys", "machine.cli.ssh:ssh_keys")
    store = store_with_machine
    assert cli(store, "ssh", "m1", "true") == 0
    capfd.readouterr()
    assert cli(store, "ssh-keys", "show", "m1") == 0
    assert capfd.readouterr().out.strip() == f"ssh-ed25519 {sshd.fingerprint()}"
    sshd.new_host_key()
    assert cli(store, "ssh", "m1", "true") == 1
    assert cli(store, "ssh-keys", "reset", "m1") == 0
    assert cli(store, "ssh", "m1", "true") == 0
    capfd.readouterr()
    assert cli(store, "ssh-keys", "show", "m1") == 0
    assert capfd.readouterr().out.strip() == f"ssh-ed25519 {sshd.fingerprint()}"


# --------------------------------------------------------------------------- issue 13: recorded fingerprint, bad input


def test_missing_known_hosts_with_recorded_fingerprint_refuses_an_impostor(sshd, tmp_path):
    """known_hosts lost, the record still holds the fingerprint: an impostor's key is
    refused with both fingerprints, even with pin=True, and nothing is pinned."""
    from machine import ssh

    kh = tmp_path / "known_hosts"
    c = ssh.connect(sshd.endpoint(), kh, pin=True)
    recorded = c.host_key_fingerprint
    c.close()
    kh.unlink()
    sshd.new_host_key()  # the impostor
    impostor = sshd.fingerprint()
    assert impostor != recorded
    for pin in (True, False):
        with pytest.raises(HostKeyMismatch) as ei:
            ssh.connect(sshd.endpoint(), kh, pin=pin, expected_fingerprint=recorded)
        msg = str(ei.value)
        assert recorded in msg and impostor in msg and "\n" not in msg
        assert not kh.exists()  # never silently re-pinned
    t0 = time.monotonic()
    with pytest.raises(HostKeyMismatch):
        ssh.wait_for_ssh(sshd.endpoint(), kh, deadline_s=30, pin=True, expected_fingerprint=recorded)
    assert time.monotonic() - t0 < 5 and not kh.exists()


def test_missing_known_hosts_with_matching_fingerprint_restores_the_entry(sshd, tmp_path):
    from machine import ssh

    kh = tmp_path / "known_hosts"
    c = ssh.connect(sshd.endpoint(), kh, pin=True)
    recorded = c.host_key_fingerprint
    c.close()
    kh.unlink()
    # the record may carry the type too, or base64 padding
    for fp in (recorded, f"ssh-ed25519 {recorded}", recorded + "="):
        c = ssh.connect(sshd.endpoint(), kh, pin=False, expected_fingerprint=fp)
        assert not c.pinned and c.host_key_fingerprint == recorded
        c.close()
    assert kh.exists()  # the same key written back
    assert ssh.HostKeys(kh).lookup("127.0.0.1", sshd.port)


def test_known_hosts_present_but_record_disagrees_is_refused(sshd, tmp_path):
    from machine import ssh

    kh = tmp_path / "known_hosts"
    ssh.connect(sshd.endpoint(), kh, pin=True).close()
    with pytest.raises(HostKeyMismatch):
        ssh.connect(sshd.endpoint(), kh, expected_fingerprint="SHA256:" + "A" * 43)


@pytest.mark.parametrize("content", [b"garbage", b"", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                     b"-----END OPENSSH PRIVATE KEY-----\n", os.urandom(300), "pub"])
def test_unparseable_private_key_fails_at_once_naming_the_file(tmp_path, content):
    from machine import ssh

    key = tmp_path / "id_rsa"
    if content == "pub":
        keygen(tmp_path / "k")
        key.write_bytes((tmp_path / "k.pub").read_bytes())
    else:
        key.write_bytes(content)
    port = free_port()  # nothing listens: before the fix this waited out the deadline
    t0 = time.monotonic()
    with pytest.raises(MachineError) as ei:
        ssh.wait_for_ssh(SSHEndpoint("127.0.0.1", port, "root", str(key)), tmp_path / "kh",
                         deadline_s=20, pin=True, interval=0.2)
    assert time.monotonic() - t0 < 2
    assert str(key) in str(ei.value) and "\n" not in str(ei.value)


@pytest.mark.parametrize("kind", ["fifo", "dir", "devzero"])
def test_special_file_as_private_key_fails_at_once(tmp_path, kind):
    from machine import ssh

    key = tmp_path / "id_x"
    if kind == "fifo":
        os.mkfifo(key)
    elif kind == "dir":
        key.mkdir()
    else:
        key.symlink_to("/dev/zero")
    with pytest.raises(MachineError, match="not a regular file"):
        ssh.load_private_key(key)


@pytest.mark.parametrize("port", [87958, 65536, 0, -1, "22x", 22.5, True, None, ""])
def test_bad_port_is_one_usage_error_never_wrapped(tmp_path, port):
    from machine import ssh
    from machine.errors import UsageError

    for call in (lambda: ssh.connect(SSHEndpoint("127.0.0.1", port, "root", None), tmp_path / "kh"),
                 lambda: ssh.wait_for_ssh(SSHEndpoint("127.0.0.1", port, "root", None), tmp_path / "kh",
                                          deadline_s=5, pin=True)):
        t0 = time.monotonic()
        with pytest.raises(UsageError) as ei:
            call()
        assert time.monotonic() - t0 < 1 and "port" in str(ei.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, "soon", None])
def test_nan_or_negative_timeouts_are_refused(tmp_path, value):
    from machine import ssh
    from machine.errors import UsageError

    ep = SSHEndpoint("127.0.0.1", free_port(), "root", None)
    with pytest.raises(UsageError):
        ssh.wait_for_ssh(ep, tmp_path / "kh", deadline_s=value, pin=True)
    if value is not None:
        with pytest.raises(UsageError):
            ssh.wait_for_ssh(ep, tmp_path / "kh", deadline_s=1, interval=value, pin=True)
        with pytest.raises(UsageError):
            ssh.connect(ep, tmp_path / "kh", timeout=value)


def test_nan_command_timeout_is_refused(conn):
    from machine.errors import UsageError

    with pytest.raises(UsageError):
        conn.run("sleep 30", timeout=float("nan"))


def test_cli_ssh_with_lost_known_hosts_refuses_impostor_using_the_record(store_with_machine, sshd, capfd):
    store = store_with_machine
    host = store.load("m1")
    host.machine.ssh_key_fingerprint = sshd.fingerprint()
    store.save(host)
    recorded = sshd.fingerprint()
    kh = store.machine_dir("m1") / "known_hosts"
    assert not kh.exists()
    assert cli(store, "ssh", "m1", "true") == 0  # matches the record: entry restored, not a new pin
    assert kh.exists()
    kh.unlink()
    sshd.new_host_key()
    capfd.readouterr()
    assert cli(store, "ssh", "m1", "true") == 1
    err = capfd.readouterr().err
    assert recorded in err and sshd.fingerprint() in err and "Traceback" not in err
    assert not kh.exists()
