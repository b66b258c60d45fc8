#!/usr/bin/env python3
"""A minimal real OpenStack on loopback, from Debian's packages, for the openstack driver's real tier.

    python3 tests/openstack/stack.py up   [--state DIR]   # prints timings, writes DIR/clouds.yaml
    python3 tests/openstack/stack.py down [--state DIR]   # stops exactly the processes `up` started
    python3 tests/openstack/stack.py status [--state DIR]

Services: MariaDB (unix socket only, no TCP), RabbitMQ (127.0.0.1, with its own epmd), Keystone,
Placement, Glance (file store), Neutron (ML2, flat networks, a test mechanism driver that binds
every port, no agents) and Nova (conductor, scheduler, API and compute with the fake virt driver).
Seeded: projects admin and demo (user demo / secret, role member), image `fake-img`, flavor
`m1.tiny`, shared flat network `public-flat` with subnet 127.10.0.0/24 (DHCP off), so a server's
fixed address is a loopback address.

Every process is started here in its own session; its PID and start time go to DIR/pids.json, and
`down` signals exactly those process groups (never anything found by name). Needs root (MariaDB
and RabbitMQ run as the current user), the packages in .ci/openstack-packages.txt, Debian's
/usr/bin/python3 for the services, and openstacksdk in the Python running this script.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_STATE = Path(os.environ.get("MACHINE_OS_STACK_STATE", "/tmp/machine-os-stack"))
SERVICE_PY = os.environ.get("MACHINE_OS_STACK_PYTHON", "/usr/bin/python3")
PASSWORD = "secret"           # every account of this throw-away cloud
REGION = "RegionOne"

PORTS = {
    "keystone": int(os.environ.get("MACHINE_OS_KEYSTONE_PORT", 15000)),
    "placement": 8778, "glance": 9292, "neutron": 9696, "nova": 8774,
    "rabbit": 5672, "rabbit_dist": 25672, "epmd": 4369,
}


def _now() -> float:
    return time.monotonic()


class Stack:
    def __init__(self, state: Path | str = DEFAULT_STATE, log=print):
        self.state = Path(state).resolve()
        self.log = log
        self.t0 = _now()

    # ---- paths --------------------------------------------------------------------------
    @property
    def pidfile(self) -> Path:
        return self.state / "pids.json"

    @property
    def clouds_yaml(self) -> Path:
        return self.state / "clouds.yaml"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{PORTS['keystone']}/v3"

    def _db(self, name: str) -> str:
        return f"mysql+pymysql://os:{PASSWORD}@localhost/{name}?unix_socket={self.state}/mysql/mysql.sock"

    def _say(self, what: str) -> None:
        self.log(f"[{_now() - self.t0:6.1f}s] {what}")

    # ---- process bookkeeping ------------------------------------------------------------
    def _pids(self) -> list[dict]:
        try:
            return json.loads(self.pidfile.read_text())
        except (OSError, ValueError):
            return []

    def _start(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        logf = open(self.state / "logs" / f"{name}.out", "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(cwd or self.state), env={**os.environ, **(env or {})},
                                start_new_session=True)
        logf.close()
        pids = self._pids()
        pids.append({"name": name, "pid": proc.pid, "start": _start_time(proc.pid)})
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids, indent=1))
        os.replace(tmp, self.pidfile)
        return proc

    def _run(self, name: str, argv: list[str], env: dict | None = None) -> None:
        with open(self.state / "logs" / f"{name}.log", "ab") as logf:
            r = subprocess.run(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=str(self.state),
                               env={**os.environ, **(env or {})})
        if r.returncode:
            raise RuntimeError(f"{name} failed ({r.returncode}); see {self.state}/logs/{name}.log")

    def _py(self, module_main: str, prog: str, *args: str) -> list[str]:
        mod, func = module_main.split(":")
        code = f"import sys; sys.argv = {[prog, *args]!r}; from {mod} import {func}; sys.exit({func}())"
        return [SERVICE_PY, "-c", code]

    # ---- up -----------------------------------------------------------------------------
    def up(self) -> float:
        self.t0 = _now()
        if any(_alive(p) for p in self._pids()):
            raise RuntimeError(f"a stack from {self.state} is still running: run `down` first")
        busy = [f"{n}:{p}" for n, p in PORTS.items() if _port_busy(p)]
        if busy:
            raise RuntimeError(f"ports in use: {', '.join(busy)} (another stack or service?)")
        if self.state.exists():
            shutil.rmtree(self.state)
        for d in ("etc", "logs", "rabbit", "mysql/data", "keystone/fernet-keys", "keystone/credential-keys",
                  "glance/images", "glance/staging", "glance/tasks", "lock", "nova/state", "nova/instances", "pyext"):
            (self.state / d).mkdir(parents=True, exist_ok=True)
        try:
            self._mariadb()
            rabbit_ready = self._rabbit()
            self._keystone()
            self._write_configs()
            self._db_syncs_and_catalog()
            rabbit_ready()
            self._services()
            self._seed()
        except BaseException:
            self._say("start-up failed; stopping what was started (logs stay in " + str(self.state / "logs") + ")")
            self.down(quiet=True)
            raise
        elapsed = _now() - self.t0
        self._say(f"stack ready in {elapsed:.1f}s ({self.clouds_yaml})")
        return elapsed

    def _mariadb(self) -> None:
        s = self.state
        self._run("mariadb-install-db", ["mariadb-install-db", "--no-defaults", "--user=root",
                                         f"--datadir={s}/mysql/data", "--auth-root-authentication-method=normal"])
        self._start("mariadb", ["mariadbd", "--no-defaults", "--user=root", f"--datadir={s}/mysql/data",
                                f"--socket={s}/mysql/mysql.sock", "--skip-networking",
                                f"--pid-file={s}/mysql/mysqld.pid", f"--log-error={s}/logs/mysqld.err",
                                "--max-connections=500", "--innodb-buffer-pool-size=64M"])
        _wait(lambda: (s / "mysql/mysql.sock").exists(), 30, "MariaDB socket")
        dbs = ("keystone", "nova_api", "nova", "nova_cell0", "placement", "glance", "neutron")
        sql = " ".join(f"CREATE DATABASE {d};" for d in dbs)
        sql += f" CREATE USER 'os'@'localhost' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO 'os'@'localhost';"
        self._run("mariadb-setup", ["mariadb", "-S", f"{s}/mysql/mysql.sock", "-uroot", "-e", sql])
        self._say("mariadb up (unix socket only)")

    def _rabbit(self):
        s = self.state
        env = {
            "HOME": str(s / "rabbit"), "RABBITMQ_MNESIA_BASE": str(s / "rabbit/mnesia"),
            "RABBITMQ_LOG_BASE": str(s / "rabbit/log"), "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(PORTS["rabbit"]), "RABBITMQ_NODENAME": "rabbit@localhost",
            "RABBITMQ_DIST_PORT": str(PORTS["rabbit_dist"]), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(PORTS["epmd"]),
            "RABBITMQ_PID_FILE": str(s / "rabbit/rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(s / "rabbit/enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(s / "rabbit/rabbitmq"),
        }
        (s / "rabbit/enabled_plugins").write_text("[].\n")
        (s / "rabbit/rabbitmq.conf").write_text("loopback_users = none\ndistribution.listener.interface = 127.0.0.1\n")
        # Our own epmd in the foreground, so it is one of our PIDs (rabbit would daemonize one).
        self._start("epmd", ["epmd", "-address", "127.0.0.1", "-port", str(PORTS["epmd"])], env=env)
        _wait(lambda: _port_busy(PORTS["epmd"]), 10, "epmd")
        self._start("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env)

        def ready():
            _wait(lambda: _port_busy(PORTS["rabbit"]), 120, "RabbitMQ")
            self._say("rabbitmq up")
        return ready

    def _keystone(self) -> None:
        s = self.state
        (s / "etc/keystone.conf").write_text(textwrap.dedent(f"""\
            [DEFAULT]
            log_file = {s}/logs/keystone.log
            [database]
            connection = {self._db('keystone')}
            [token]
            provider = fernet
            [fernet_tokens]
            key_repository = {s}/keystone/fernet-keys
            [credential]
            key_repository = {s}/keystone/credential-keys
            """))
        k = ["keystone-manage", "--config-file", str(s / "etc/keystone.conf")]
        self._run("keystone-db-sync", k + ["db_sync"])
        self._run("keystone-fernet", k + ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"])
        self._run("keystone-credential", k + ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"])
        url = f"http://127.0.0.1:{PORTS['keystone']}/v3/"
        self._run("keystone-bootstrap", k + ["bootstrap", "--bootstrap-password", PASSWORD,
                                             "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
                                             "--bootstrap-public-url", url, "--bootstrap-region-id", REGION])
        self._start("keystone", ["keystone-wsgi-public", "--host", "127.0.0.1", "--port", str(PORTS["keystone"]),
                                 "--", "--config-file", str(s / "etc/keystone.conf")])
        _wait_http(PORTS["keystone"], 60, "Keystone")
        self._write_clouds_yaml()
        self._say("keystone up")

    def _write_clouds_yaml(self) -> None:
        def cloud(user, project):
            return textwrap.indent(textwrap.dedent(f"""\
                auth:
                  auth_url: {self.auth_url}
                  username: {user}
                  password: {PASSWORD}
                  project_name: {project}
                  user_domain_name: Default
                  project_domain_name: Default
                region_name: {REGION}
                identity_api_version: 3
                """), "    ")
        self.clouds_yaml.write_text("clouds:\n  stack-admin:\n" + cloud("admin", "admin")
                                    + "  stack-demo:\n" + cloud("demo", "demo"))

    def _auth_section(self, user: str) -> str:
        return textwrap.dedent(f"""\
            auth_type = password
            auth_url = {self.auth_url}
            project_domain_name = Default
            user_domain_name = Default
            project_name = service
            username = {user}
            password = {PASSWORD}
            region_name = {REGION}
            www_authenticate_uri = http://127.0.0.1:{PORTS['keystone']}
            """)

    def _write_configs(self) -> None:
        s, e = self.state, self.state / "etc"
        rabbit = f"rabbit://guest:guest@127.0.0.1:{PORTS['rabbit']}/"
        (e / "placement.conf").write_text(
            f"[DEFAULT]\nlog_file = {s}/logs/placement.log\n[placement_database]\nconnection = {self._db('placement')}\n"
            f"[api]\nauth_strategy = keystone\n[keystone_authtoken]\n{self._auth_section('placement')}")
        (e / "glance-api-paste.ini").write_text(GLANCE_PASTE)
        (e / "neutron-api-paste.ini").write_text(NEUTRON_PASTE)
        (e / "nova-api-paste.ini").write_text(NOVA_PASTE)
        (e / "glance-api.conf").write_text(textwrap.dedent(f"""\
            [DEFAULT]
            log_file = {s}/logs/glance.log
            bind_host = 127.0.0.1
            bind_port = {PORTS['glance']}
            workers = 1
            enabled_backends = fs:file
            [database]
            connection = {self._db('glance')}
            [glance_store]
            default_backend = fs
            [fs]
            filesystem_store_datadir = {s}/glance/images
            [os_glance_staging_store]
            filesystem_store_datadir = {s}/glance/staging
            [os_glance_tasks_store]
            filesystem_store_datadir = {s}/glance/tasks
            [oslo_concurrency]
            lock_path = {s}/lock
            [paste_deploy]
            flavor = keystone
            config_file = {e}/glance-api-paste.ini
            [keystone_authtoken]
            """) + self._auth_section("glance"))
        (e / "neutron.conf").write_text(textwrap.dedent(f"""\
            [DEFAULT]
            log_file = {s}/logs/neutron-server.log
            bind_host = 127.0.0.1
            bind_port = {PORTS['neutron']}
            core_plugin = ml2
            service_plugins =
            auth_strategy = keystone
            transport_url = {rabbit}
            api_paste_config = {e}/neutron-api-paste.ini
            api_workers = 0
            rpc_workers = 0
            rpc_state_report_workers = 0
            notify_nova_on_port_status_changes = false
            notify_nova_on_port_data_changes = false
            [database]
            connection = {self._db('neutron')}
            [oslo_concurrency]
            lock_path = {s}/lock
            [ml2]
            type_drivers = flat,vlan
            tenant_network_types =
            mechanism_drivers = machine_always_bind
            extension_drivers = port_security
            [ml2_type_flat]
            flat_networks = *
            [securitygroup]
            firewall_driver = noop
            [keystone_authtoken]
            """) + self._auth_section("nova"))
        (e / "nova.conf").write_text(textwrap.dedent(f"""\
            [DEFAULT]
            enabled_apis = osapi_compute
            osapi_compute_listen = 127.0.0.1
            osapi_compute_listen_port = {PORTS['nova']}
            osapi_compute_workers = 1
            log_dir = {s}/logs
            state_path = {s}/nova/state
            instances_path = {s}/nova/instances
            transport_url = {rabbit}
            compute_driver = fake.FakeDriver
            host = machine-fake-compute
            my_ip = 127.0.0.1
            [api]
            auth_strategy = keystone
            [wsgi]
            api_paste_config = {e}/nova-api-paste.ini
            [api_database]
            connection = {self._db('nova_api')}
            [database]
            connection = {self._db('nova')}
            [oslo_concurrency]
            lock_path = {s}/lock
            [glance]
            api_servers = http://127.0.0.1:{PORTS['glance']}
            [scheduler]
            workers = 1
            discover_hosts_in_cells_interval = 2
            [conductor]
            workers = 1
            [vnc]
            enabled = false
            [oslo_messaging_notifications]
            driver = noop
            [service_user]
            send_service_user_token = false
            [placement]
            """) + self._auth_section("placement") + "[neutron]\n" + self._auth_section("nova")
            + "[keystone_authtoken]\n" + self._auth_section("nova"))
        # The test ML2 mechanism driver, found by neutron through its entry point.
        pyext = s / "pyext"
        shutil.copyfile(HERE / "ml2_always_bind.py", pyext / "machine_ml2_always_bind.py")
        dist = pyext / "machine_ml2_always_bind-0.1.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: machine-ml2-always-bind\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "[neutron.ml2.mechanism_drivers]\n"
            "machine_always_bind = machine_ml2_always_bind:AlwaysBindMechanismDriver\n")

    def _db_syncs_and_catalog(self) -> None:
        e = self.state / "etc"
        nova_manage = ["--config-file", str(e / "nova.conf")]
        jobs = {
            "placement-db-sync": lambda: self._run("placement-db-sync", ["placement-manage", "--config-file",
                                                                        str(e / "placement.conf"), "db", "sync"]),
            "glance-db-sync": lambda: self._run("glance-db-sync", self._py(
                "glance.cmd.manage:main", "glance-manage", "--config-file", str(e / "glance-api.conf"), "db_sync")),
            "neutron-db-sync": lambda: self._run("neutron-db-sync", self._py(
                "neutron.db.migration.cli:main", "neutron-db-manage", "--config-file", str(e / "neutron.conf"),
                "upgrade", "heads")),
            "nova-db-sync": lambda: [self._run("nova-db-sync", self._py("nova.cmd.manage:main", "nova-manage", *a))
                                     for a in (nova_manage + ["api_db", "sync"],
                                               nova_manage + ["cell_v2", "map_cell0", "--database_connection",
                                                              self._db("nova_cell0")],
                                               nova_manage + ["cell_v2", "create_cell", "--name=cell1"],
                                               nova_manage + ["db", "sync"])],
            "catalog": self._catalog,
        }
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {name: pool.submit(fn) for name, fn in jobs.items()}
            for name, f in futures.items():
                f.result()
        self._say("database schemas and keystone catalog done")

    def _catalog(self) -> None:
        c = self.connect("stack-admin")
        idn = c.identity
        service_project = idn.find_project("service") or idn.create_project(name="service", domain_id="default")
        demo = idn.find_project("demo") or idn.create_project(name="demo", domain_id="default")
        admin_role, member = idn.find_role("admin"), idn.find_role("member")
        service_role = idn.find_role("service") or idn.create_role(name="service")
        for name in ("nova", "placement", "glance"):
            user = idn.find_user(name) or idn.create_user(name=name, password=PASSWORD, domain_id="default",
                                                          default_project_id=service_project.id)
            idn.assign_project_role_to_user(service_project, user, admin_role)
            idn.assign_project_role_to_user(service_project, user, service_role)
        demo_user = idn.find_user("demo") or idn.create_user(name="demo", password=PASSWORD, domain_id="default",
                                                             default_project_id=demo.id)
        idn.assign_project_role_to_user(demo, demo_user, member)
        for stype, name, port, path in (("compute", "nova", PORTS["nova"], "/v2.1"),
                                        ("placement", "placement", PORTS["placement"], ""),
                                        ("image", "glance", PORTS["glance"], ""),
                                        ("network", "neutron", PORTS["neutron"], "")):
            svc = idn.find_service(name) or idn.create_service(type=stype, name=name)
            for iface in ("public", "internal", "admin"):
                idn.create_endpoint(service_id=svc.id, interface=iface, region_id=REGION,
                                    url=f"http://127.0.0.1:{port}{path}")

    def _services(self) -> None:
        e = self.state / "etc"
        self._start("placement", ["placement-api", "--host", "127.0.0.1", "--port", str(PORTS["placement"]), "--",
                                  "--config-file", str(e / "placement.conf")], env={"OS_PLACEMENT_CONFIG_DIR": str(e)})
        self._start("glance", self._py("glance.cmd.api:main", "glance-api", "--config-file", str(e / "glance-api.conf")))
        self._start("neutron", self._py("neutron.cmd.eventlet.server:main", "neutron-server",
                                        "--config-file", str(e / "neutron.conf")),
                    env={"PYTHONPATH": str(self.state / "pyext")})
        for svc in ("conductor", "scheduler", "compute", "api"):
            self._start(f"nova-{svc}", self._py(f"nova.cmd.{svc}:main", f"nova-{svc}",
                                                "--config-file", str(e / "nova.conf")))
        for name in ("placement", "glance", "neutron", "nova"):
            _wait_http(PORTS[name], 180, name, alive=self._check_alive)
        self._say("all APIs answering")

    def _check_alive(self) -> None:
        dead = [p["name"] for p in self._pids() if not _alive(p)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; see {self.state}/logs/")

    def _seed(self) -> None:
        import io

        c = self.connect("stack-admin")
        _wait(lambda: (self._check_alive(), list(c.compute.hypervisors()))[1], 180, "nova-compute to register")
        c.image.create_image(name="fake-img", data=io.BytesIO(b"\0" * 1024), disk_format="raw",
                             container_format="bare", visibility="public")
        c.compute.create_flavor(name="m1.tiny", ram=512, vcpus=1, disk=1)
        net = c.network.create_network(name="public-flat", shared=True, provider_network_type="flat",
                                       provider_physical_network="physnet1")
        c.network.create_subnet(network_id=net.id, ip_version=4, cidr="127.10.0.0/24", gateway_ip="127.10.0.1",
                                name="public-flat-v4", is_dhcp_enabled=False,
                                allocation_pools=[{"start": "127.10.0.50", "end": "127.10.0.99"}])
        # The compute host must be mapped to the cell before a server can be scheduled.
        _wait(lambda: any(s.binary == "nova-compute" and s.state == "up" for s in c.compute.services()),
              120, "nova-compute service up")
        self._say("seeded: image fake-img, flavor m1.tiny, network public-flat (127.10.0.0/24)")

    def connect(self, cloud: str = "stack-demo"):
        """An openstacksdk Connection to one of the stack's clouds (stack-admin, stack-demo)."""
        from openstack import config as os_config
        from openstack import connection

        region = os_config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False).get_one(cloud)
        return connection.Connection(config=region)

    # ---- down ---------------------------------------------------------------------------
    def down(self, quiet: bool = False) -> None:
        pids = [p for p in self._pids() if _alive(p)]
        base = ("rabbitmq", "epmd", "mariadb")
        # the OpenStack services first, then RabbitMQ, its epmd and the database
        for group in ([p for p in pids if p["name"] not in base],
                      *([p for p in pids if p["name"] == name] for name in base)):
            for p in group:
                _signal_group(p, signal.SIGTERM)
            deadline = _now() + 20
            while any(_alive(p) for p in group) and _now() < deadline:
                time.sleep(0.2)
            for p in group:
                if _alive(p):
                    if not quiet:
                        self.log(f"SIGKILL {p['name']} ({p['pid']})")
                    _signal_group(p, signal.SIGKILL)
        if self.pidfile.exists():
            self.pidfile.unlink()
        if not quiet:
            self.log(f"stopped {len(pids)} process group(s) from {self.state}")

    def status(self) -> list[tuple[str, int, bool]]:
        return [(p["name"], p["pid"], _alive(p)) for p in self._pids()]


# ---- helpers ----------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else None


def _alive(p: dict) -> bool:
    """Is the process we started still running (not a zombie, not a new process on a reused PID)?"""
    fields = _stat(p["pid"])
    if len(fields) <= 19 or fields[19] != p.get("start"):
        return False
    if fields[0] == "Z":
        try:
            os.waitpid(p["pid"], os.WNOHANG)   # reap it if it is our child
        except ChildProcessError:
            pass
        return False
    return True


def _signal_group(p: dict, sig) -> None:
    if not _alive(p):
        return
    try:
        os.killpg(p["pid"], sig)   # the session/group we created for it: its workers go too
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(p["pid"], sig)


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(pred, timeout: float, what: str, interval: float = 0.5):
    deadline = _now() + timeout
    while True:
        try:
            result = pred()
        except RuntimeError:
            raise
        except Exception:  # noqa: BLE001 - not ready yet
            result = None
        if result:
            return result
        if _now() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _wait_http(port: int, timeout: float, what: str, alive=None) -> None:
    import urllib.error
    import urllib.request

    def answers():
        if alive:
            alive()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError:
            pass   # any HTTP answer will do
        return True
    _wait(answers, timeout, f"{what} on port {port}", interval=0.3)


# ---- paste pipelines (as in Debian's *-common packages, without the parts not used here) ---

NOVA_PASTE = """\
[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: oscomputeversions
/v2.1: oscomputeversion_v2
/v2.1/+: openstack_compute_api_v21

[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit authtoken keystonecontext osapi_compute_app_v21
noauth2 = cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit noauth2 osapi_compute_app_v21

[filter:request_log]
paste.filter_factory = nova.api.openstack.requestlog:RequestLog.factory
[filter:compute_req_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory
[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory
[filter:noauth2]
paste.filter_factory = nova.api.openstack.auth:NoAuthMiddleware.factory
[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = nova
[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory
[pipeline:oscomputeversions]
pipeline = cors faultwrap request_log http_proxy_to_wsgi oscomputeversionapp
[pipeline:oscomputeversion_v2]
pipeline = cors compute_req_id faultwrap request_log http_proxy_to_wsgi oscomputeversionapp_v2
[app:oscomputeversionapp]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory
[app:oscomputeversionapp_v2]
paste.app_factory = nova.api.openstack.compute.versions:VersionsV2.factory
"""

NEUTRON_PASTE = """\
[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions_composite
/v2.0: neutronapi_v2_0

[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi request_id fake_project_id catch_errors extensions neutronapiapp_v2_0
keystone = cors http_proxy_to_wsgi request_id catch_errors authtoken keystonecontext extensions neutronapiapp_v2_0

[composite:neutronversions_composite]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi neutronversions
keystone = cors http_proxy_to_wsgi neutronversions

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory
[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = neutron
[filter:fake_project_id]
paste.filter_factory = neutron.auth:NoauthFakeProjectId.factory
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory
[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory
[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory
[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
"""

GLANCE_PASTE = """\
[pipeline:glance-api-keystone]
pipeline = cors http_proxy_to_wsgi versionnegotiation authtoken context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource
[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory
[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = glance
oslo_config_program = glance-api
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("up", "down", "status"))
    ap.add_argument("--state", default=str(DEFAULT_STATE), help="state folder (default %(default)s)")
    args = ap.parse_args(argv)
    stack = Stack(args.state)
    if args.action == "up":
        try:
            stack.up()
        except Exception as e:  # noqa: BLE001
            print(f"stack: {e}", file=sys.stderr)
            return 1
    elif args.action == "down":
        stack.down()
    else:
        for name, pid, alive in stack.status():
            print(f"{name:16s} {pid:8d} {'running' if alive else 'gone'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
