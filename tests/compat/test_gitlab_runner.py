"""GitLab Runner's docker+machine executor, replayed call for call against `machine`.

What it does (gitlab-org/gitlab-runner, helpers/docker/machine_command.go and
executors/docker/machine/): it runs the executable it knows as `docker-machine` with
`--bugsnag-api-token=<token>` in front of every verb; `create --driver D --<opt>… NAME`
with names like runner-abcd1234-1733130000-1a2b3c4d, many at once from separate
processes; lists machines by reading MACHINE_STORAGE_PATH/machines; treats `config NAME`
succeeding as "can connect"; reads `url`, `ip`, `status` and
`inspect NAME -f {{.HostOptions.AuthOptions.StorePath}}` and points the docker client at
that folder's ca.pem/cert.pem/key.pem; `provision`, `stop` under a deadline, `rm -y`,
`rm -f`; newer versions `update-labels`; and reads config.json's DriverName and Driver.

Here `docker-machine` is a symlink to the `machine` program. The `none` tier runs against
a real mutual-TLS endpoint on loopback (a TLS server with a certificate from the store's
CA); the qemu tier (marker vm) against a real VM.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TOKEN_FLAG = "--bugsnag-api-token=no-report"


class Runner:
    """The executor's machineCommand: every call through the `docker-machine` name."""

    def __init__(self, bindir: Path, store: Path, docker_config: Path):
        self.exe = str(bindir / "docker-machine")
        self.env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(docker_config))
        self.store = store

    def run(self, *args, timeout: float = 120):
        return subprocess.run([self.exe, TOKEN_FLAG, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def get(self, *args) -> str:
        r = self.run(*args)
        assert r.returncode == 0, (args, r.stderr)
        out = r.stdout.strip()
        assert out, f"failed to get {args}"
        return out

    def create(self, driver: str, name: str, *opts: str):
        return self.run("create", "--driver", driver, *("--" + o for o in opts), name)

    def list(self) -> list[str]:  # machine_command.go List(): the folders of machines/
        d = self.store / "machines"
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.exists() else []

    def exist(self, name: str) -> bool:
        return (self.store / "machines" / name / "config.json").exists() and self.run("inspect", name).returncode == 0

    def can_connect(self, name: str) -> bool:
        return self.run("config", name).returncode == 0

    def credentials(self, name: str) -> dict:
        return {"Host": self.get("url", name), "CertPath": self.get("inspect", name, "-f",
                                                                     "{{.HostOptions.AuthOptions.StorePath}}"),
                "TLSVerify": True}


@pytest.fixture
def runner(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    target = shutil.which("machine")
    if target is None:
        pytest.skip("the machine console script is not installed (pip install -e .)")
    (bindir / "docker-machine").symlink_to(target)
    return Runner(bindir, tmp_path / "store", tmp_path / "docker")


class TLSEngine:
    """A mutual-TLS listener on 127.0.0.1 with a server certificate from the store's CA:
    it completes the handshake GitLab Runner's `config` check makes, then closes."""

    def __init__(self, certs_dir: Path, workdir: Path):
        from machine import certs

        certs.generate_server_cert(certs_dir / "ca.pem", certs_dir / "ca-key.pem", workdir / "server.pem",
                                   workdir / "server-key.pem", common_name="engine", sans=["127.0.0.1"])
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs_dir / "ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_cert_chain(str(workdir / "server.pem"), str(workdir / "server-key.pem"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                with self.ctx.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (ssl.SSLError, OSError):
                conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


def runner_name(i: int) -> str:
    return f"runner-abcd1234-1733130000-{i:08x}"


def test_runner_lifecycle_on_none(runner, tmp_path):
    # the store's CA exists once the first machine is created; make it first with a throw-away machine
    assert runner.create("none", "seed", "url=tcp://127.0.0.1:9").returncode == 0
    engine = TLSEngine(runner.store / "certs", tmp_path)
    try:
        name = runner_name(1)
        r = runner.create("none", name, f"url=tcp://127.0.0.1:{engine.port}")
        assert r.returncode == 0, r.stderr
        assert name in runner.list() and runner.exist(name)
        assert not runner.exist("runner-never-made")
        assert runner.can_connect(name) and engine.handshakes >= 1
        creds = runner.credentials(name)
        assert creds["Host"] == f"tcp://127.0.0.1:{engine.port}"
        for f in ("ca.pem", "cert.pem", "key.pem"):  # what the docker client is pointed at
            assert (Path(creds["CertPath"]) / f).is_file()
        assert runner.get("ip", name) == "127.0.0.1"
        assert runner.get("status", name) == "Running"
        record = json.loads((runner.store / "machines" / name / "config.json").read_text())
        assert record["DriverName"] == "none" and isinstance(record["Driver"], dict)  # Inspect() reads these
        assert runner.run("update-labels", "--label", "job=42", name).returncode == 0
        # the engine gone: `config` says the machine cannot be used
        engine.close()
        assert not runner.can_connect(name)
        r = runner.run("rm", "-y", name)
        assert r.returncode == 0 and name not in runner.list()
        # rm -f of a machine whose record is broken still removes it
        broken = runner_name(2)
        (runner.store / "machines" / broken).mkdir()
        (runner.store / "machines" / broken / "config.json").write_text("{not json")
        assert runner.run("rm", "-f", broken).returncode == 0 and broken not in runner.list()
    finally:
        engine.close()


def test_runner_parallel_creates_leave_good_records_and_one_ca(runner):
    """MaxGrowthRate: many creates at once from separate processes."""
    names = [runner_name(100 + i) for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: runner.create("none", n, "url=tcp://127.0.0.1:9"), names))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    assert set(names) <= set(runner.list())
    for n in names:
        json.loads((runner.store / "machines" / n / "config.json").read_text())
        assert runner.get("url", n) == "tcp://127.0.0.1:9"
    assert sorted(p.name for p in (runner.store / "certs").iterdir() if p.suffix == ".pem") == \
        ["ca-key.pem", "ca.pem", "cert.pem", "key.pem"]


@pytest.mark.vm
def test_runner_lifecycle_on_qemu(runner, engine_image):
    """The same calls against a real VM: create, config as liveness, docker through the
    inspect-reported cert folder, stop under a one-minute deadline, rm -y."""
    from harness.vm import TEST_CACHE
    from machine.drivers.qemu import QemuConfig

    # the runner's store shares the test image cache, as every VM test's store does
    runner.store.mkdir(mode=0o700, exist_ok=True)
    (runner.store / "cache").symlink_to(TEST_CACHE, target_is_directory=True)
    name = runner_name(7)
    opts = ["--qemu-memory", "768"]
    if any(s.flag == "network-mode" for s in QemuConfig.options()):
        opts += ["--qemu-network-mode", "isolated"]  # a test VM reaches nothing but loopback
    r = runner.run("create", "--driver", "qemu", *opts, name, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    try:
        assert runner.can_connect(name)
        creds = runner.credentials(name)
        docker = shutil.which("docker")
        if docker:
            env = dict(runner.env, DOCKER_HOST=creds["Host"], DOCKER_CERT_PATH=creds["CertPath"],
                       DOCKER_TLS_VERIFY="1")
            v = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                               text=True, env=env, timeout=60)
            assert v.returncode == 0 and v.stdout.strip(), v.stderr
        t0 = time.monotonic()
        assert runner.run("stop", name, timeout=60).returncode == 0
        assert time.monotonic() - t0 < 60
        assert runner.get("status", name) == "Stopped"
        assert not runner.can_connect(name)
    finally:
        assert runner.run("rm", "-y", name, timeout=120).returncode == 0
    assert name not in runner.list()
