"""vcsim for the tests: built by the tests from Debian's govmomi sources, started per session.

    sim = Vcsim.start(user="admin", password="s3cret")   # builds once, then listens on 127.0.0.1:<free>
    sim.url, sim.host, sim.port, sim.cert_file      # cert_file: the test CA that signed its certificate
    sim.connect()                                        # a pyVmomi ServiceInstance
    sim.set_free_space("LocalDS_0", 10 << 20)            # the one test hook (tests/vsphere/vcsim/main.go)
    sim.stop()

The binary is cached under $MACHINE_TEST_CACHE/vcsim-<hash> (default /var/tmp/machine-test-cache),
the hash covering main.go, the Go toolchain and the govmomi package version, so CI rebuilds it only
when one of those changes. Build: `go build` with GOPATH=/usr/share/gocode GO111MODULE=off
GOPROXY=off (Debian's golang-go and golang-github-vmware-govmomi-dev; nothing is downloaded).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN_GO = HERE / "vcsim" / "main.go"
TEST_CACHE = Path(os.environ.get("MACHINE_TEST_CACHE", "/var/tmp/machine-test-cache"))
GOPATH = "/usr/share/gocode"
GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi"
DEBIAN_PACKAGES = "golang-go golang-github-vmware-govmomi-dev"


def unavailable() -> str | None:
    """None when vcsim can be built (or is cached) here, else why not."""
    if _cached_binary() is not None:
        return None
    if not shutil.which("go"):
        return f"go is not installed (apt-get install {DEBIAN_PACKAGES})"
    if not (GOVMOMI / "simulator").is_dir():
        return f"govmomi sources missing (apt-get install {DEBIAN_PACKAGES})"
    return None


def _govmomi_version() -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "golang-github-vmware-govmomi-dev"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _go_version() -> str:
    go = shutil.which("go")
    if not go:
        return ""
    return subprocess.run([go, "version"], capture_output=True, text=True, timeout=60).stdout.strip()


def build_hash() -> str:
    h = hashlib.sha256(MAIN_GO.read_bytes())
    h.update(_go_version().encode())
    h.update(_govmomi_version().encode())
    return h.hexdigest()[:16]


def _cached_binary() -> Path | None:
    if not shutil.which("go"):
        # no toolchain: any cached build will do (CI images may ship only the cache)
        found = sorted(TEST_CACHE.glob("vcsim-*/vcsim"))
        return found[-1] if found else None
    p = TEST_CACHE / f"vcsim-{build_hash()}" / "vcsim"
    return p if p.is_file() else None


def build(log=lambda s: None) -> Path:
    """The vcsim binary, built now if not cached (about 25-45 s on these machines)."""
    from filelock import FileLock

    cached = _cached_binary()
    if cached is not None:
        return cached
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    out_dir = TEST_CACHE / f"vcsim-{build_hash()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        binary = out_dir / "vcsim"
        if binary.is_file():
            return binary
        work = out_dir / "src"
        work.mkdir(exist_ok=True)
        shutil.copy(MAIN_GO, work / "main.go")
        env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOPROXY="off", GOFLAGS="",
                   GOCACHE=str(TEST_CACHE / "go-build-cache"), CGO_ENABLED="0")
        t0 = time.monotonic()
        tmp = out_dir / f".vcsim.{os.getpid()}"
        r = subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=work, env=env, capture_output=True,
                           text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"building vcsim failed:\n{r.stderr[-3000:]}")
        os.replace(tmp, binary)
        log(f"built vcsim in {time.monotonic() - t0:.0f}s -> {binary}")
        return binary


def make_tls(d: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) for 127.0.0.1 and localhost, written into d."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "machine-test vcsim CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = d / "ca.pem", d / "server.pem", d / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(paths[2], 0o600)
    return paths


class Vcsim:
    def __init__(self, proc: subprocess.Popen, url: str, cert_file: str, user: str, password: str):
        self.proc = proc
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.url = f"https://{self.host}:{self.port}/sdk"
        self.cert_file = cert_file
        self.user, self.password = user, password

    @classmethod
    def start(cls, user: str = "admin", password: str = "s3cret", timeout: float = 30.0,
              tls_dir: str | os.PathLike | None = None) -> "Vcsim":
        """Start vcsim on a free loopback port, serving a certificate signed by a fresh test CA."""
        import tempfile

        binary = build()
        tls_dir = Path(tls_dir or tempfile.mkdtemp(prefix="vcsim-tls-"))
        ca, cert, key = make_tls(tls_dir)
        proc = subprocess.Popen([str(binary), "-l", "127.0.0.1:0", "-u", f"{user}:{password}",
                                 "-tlscert", str(cert), "-tlskey", str(key)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        end = time.monotonic() + timeout
        line = ""
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < end and proc.poll() is None:
            if sel.select(timeout=0.5):
                line = proc.stdout.readline().strip()
                if line:
                    break
        sel.close()
        if not line:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"vcsim did not start: {err[-2000:]}")
        url = line.partition(" ")[0]
        return cls(proc, url, str(ca), user, password)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    # ---- clients --------------------------------------------------------------------
    def connect(self):
        from pyVim.connect import SmartConnect

        ctx = ssl.create_default_context(cafile=self.cert_file)
        return SmartConnect(host=self.host, port=self.port, user=self.user, pwd=self.password, sslContext=ctx)

    def set_free_space(self, datastore: str, free_bytes: int) -> None:
        q = urllib.parse.urlencode({"name": datastore, "bytes": int(free_bytes)})
        ctx = ssl.create_default_context(cafile=self.cert_file)
        req = urllib.request.Request(f"https://{self.host}:{self.port}/machine-test/datastore-free?{q}",
                                     method="POST", data=b"")
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            assert r.status == 200


def find(si, vimtype, name: str | None = None) -> list:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        return [o for o in view.view if name is None or o.name == name]
    finally:
        view.Destroy()


TEMPLATE = "debian-12-template"


def make_template(si, name: str = TEMPLATE):
    """Turn one of vcsim's VMs into a powered-off template (idempotent)."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    existing = find(si, vim.VirtualMachine, name)
    if existing:
        return existing[0]
    src = find(si, vim.VirtualMachine, "DC0_C0_RP0_VM0")[0]
    if src.runtime.powerState == "poweredOn":
        WaitForTask(src.PowerOffVM_Task())
    WaitForTask(src.Rename_Task(name))
    src.MarkAsTemplate()
    return src
