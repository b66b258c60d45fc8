"""A store written by docker-machine 0.16.2 loads: ls, env, inspect, config, rm work on it.

The fixture is written from docker-machine's documented config.json fields
(libmachine/host.Host, ConfigVersion 3, absolute paths as docker-machine wrote them)
for a virtualbox machine and a generic one, with certs made like docker-machine's
(RSA 2048).
"""
from __future__ import annotations

import json
import os

import pytest

from machine import certs


def dm_config(store, name, driver_name, driver):
    mdir = f"{store}/machines/{name}"
    return {
        "ConfigVersion": 3,
        "Driver": driver,
        "DriverName": driver_name,
        "HostOptions": {
            "Driver": "", "Memory": 0, "Disk": 0,
            "EngineOptions": {
                "ArbitraryFlags": [], "Dns": None, "GraphDir": "", "Env": [], "Ipv6": False,
                "InsecureRegistry": [], "Labels": ["env=legacy"], "LogLevel": "", "StorageDriver": "",
                "SelinuxEnabled": False, "TlsVerify": True, "RegistryMirror": [],
                "InstallURL": "https://get.docker.com",
            },
            "SwarmOptions": {
                "IsSwarm": False, "Address": "", "Discovery": "", "Agent": False, "Master": False,
                "Host": "tcp://0.0.0.0:3376", "Image": "swarm:latest", "Strategy": "spread", "Heartbeat": 0,
                "Overcommit": 0, "ArbitraryFlags": [], "ArbitraryJoinFlags": [], "Env": None,
                "IsExperimental": False,
            },
            "AuthOptions": {
                "CertDir": f"{store}/certs", "CaCertPath": f"{store}/certs/ca.pem",
                "CaPrivateKeyPath": f"{store}/certs/ca-key.pem", "CaCertRemotePath": "",
                "ServerCertPath": f"{mdir}/server.pem", "ServerKeyPath": f"{mdir}/server-key.pem",
                "ClientKeyPath": f"{store}/certs/key.pem", "ServerCertRemotePath": "",
                "ServerKeyRemotePath": "", "ClientCertPath": f"{store}/certs/cert.pem",
                "ServerCertSANs": [], "StorePath": mdir,
            },
        },
        "Name": name,
    }


@pytest.fixture
def dm_store(store_path):
    store = str(store_path)
    os.makedirs(f"{store}/certs")
    certs.generate_ca(f"{store}/certs/ca.pem", f"{store}/certs/ca-key.pem", key_type="rsa2048")
    certs.generate_client_cert(f"{store}/certs/ca.pem", f"{store}/certs/ca-key.pem", f"{store}/certs/cert.pem",
                               f"{store}/certs/key.pem", key_type="rsa2048")
    machines = {
        "default": ("virtualbox", {
            "IPAddress": "192.168.99.100", "MachineName": "default", "SSHUser": "docker", "SSHPort": 58145,
            "SSHKeyPath": f"{store}/machines/default/id_rsa", "StorePath": store, "SwarmMaster": False,
            "SwarmHost": "tcp://0.0.0.0:3376", "SwarmDiscovery": "", "VBoxManager": {}, "HostInterfaces": {},
            "CPU": 1, "Memory": 1024, "DiskSize": 20000, "NatNicType": "82540EM", "Boot2DockerURL": "",
            "Boot2DockerImportVM": "", "HostDNSResolver": False, "HostOnlyCIDR": "192.168.99.1/24",
            "HostOnlyNicType": "82540EM", "HostOnlyPromiscMode": "deny", "UIType": "headless",
            "HostOnlyNoDHCP": False, "NoShare": False, "DNSProxy": True, "NoVTXCheck": False, "ShareFolder": "",
        }),
        "legacy-generic": ("generic", {
            "IPAddress": "127.0.0.1", "MachineName": "legacy-generic", "SSHUser": "ubuntu", "SSHPort": 22,
            "SSHKeyPath": f"{store}/machines/legacy-generic/id_rsa", "StorePath": store, "SwarmMaster": False,
            "SwarmHost": "", "SwarmDiscovery": "", "EnginePort": 2376, "SSHKey": "/home/u/.ssh/id_rsa",
        }),
    }
    for name, (drv, driver) in machines.items():
        mdir = f"{store}/machines/{name}"
        os.makedirs(mdir)
        with open(f"{mdir}/config.json", "w") as f:
            json.dump(dm_config(store, name, drv, driver), f, indent=4)
        for fn in ("ca.pem", "cert.pem", "key.pem"):
            with open(f"{store}/certs/{fn}", "rb") as src, open(f"{mdir}/{fn}", "wb") as dst:
                dst.write(src.read())
        certs.generate_server_cert(f"{store}/certs/ca.pem", f"{store}/certs/ca-key.pem", f"{mdir}/server.pem",
                                   f"{mdir}/server-key.pem", common_name=name, sans=[driver["IPAddress"]],
                                   key_type="rsa2048")
        with open(f"{mdir}/id_rsa", "w") as f:
            f.write("not a real key\n")
        os.chmod(f"{mdir}/id_rsa", 0o600)
    return store_path


def test_ls_lists_docker_machine_hosts(cli, dm_store):
    r = cli("ls", "--timeout", "1", "--filter", "driver=generic")
    assert r.code == 0
    row = r.out.splitlines()[1].split()
    assert row[:2] == ["legacy-generic", "-"] and row[2] == "generic"
    assert "tcp://127.0.0.1:2376" in r.out
    # virtualbox cannot run here: the row still shows, with the reason, and other rows are unaffected
    full = cli("ls", "--timeout", "1")
    names = [ln.split()[0] for ln in full.out.splitlines()[1:]]
    assert names == ["default", "legacy-generic"]
    assert cli("ls", "-q", "--filter", "label=env=legacy").out == "default\nlegacy-generic\n"


def test_env_and_config_on_docker_machine_host(cli, dm_store):
    out = cli("env", "--shell", "bash", "default").out
    assert out.startswith(
        'export DOCKER_TLS_VERIFY="1"\n'
        'export DOCKER_HOST="tcp://192.168.99.100:2376"\n'
        f'export DOCKER_CERT_PATH="{dm_store}/machines/default"\n'
        'export DOCKER_MACHINE_NAME="default"\n')
    assert cli("env", "--shell", "bash").out == out  # no name means "default", as in docker-machine
    cfg = cli("config", "--no-check", "default").out  # no TLS dial: 192.168.99.100 is not ours to reach
    assert f'--tlscacert="{dm_store}/certs/ca.pem"' in cfg and "-H=tcp://192.168.99.100:2376" in cfg


def test_inspect_keeps_docker_machine_fields(cli, dm_store):
    data = json.loads(cli("inspect", "default").out)
    assert data["Driver"]["HostOnlyCIDR"] == "192.168.99.1/24"
    assert data["Driver"]["Boot2DockerURL"] == ""
    assert data["HostOptions"]["SwarmOptions"]["Image"] == "swarm:latest"
    assert data["HostOptions"]["AuthOptions"]["CaCertPath"] == f"{dm_store}/certs/ca.pem"
    assert cli("inspect", "-f", "{{.Driver.SSHUser}}", "default").out == "docker\n"
    assert data["Machine"]["CertExpiry"]  # read from server.pem


def test_rm_on_docker_machine_generic_host(cli, dm_store):
    r = cli("rm", "-y", "legacy-generic")
    assert r.code == 0, r
    assert not (dm_store / "machines/legacy-generic").exists()
    assert (dm_store / "machines/default/config.json").exists()
    # the shared CA is untouched
    assert (dm_store / "certs/ca.pem").exists()


def test_our_rewrite_stays_readable_by_docker_machine_names(cli, dm_store):
    from machine.store import Store

    s = Store(dm_store)
    s.save(s.load("default"))
    raw = json.loads((dm_store / "machines/default/config.json").read_text())
    for key in ("ConfigVersion", "Driver", "DriverName", "HostOptions", "Name"):
        assert key in raw
    assert raw["Driver"]["HostOnlyCIDR"] == "192.168.99.1/24"
    assert set(dm_config("", "x", "v", {})["HostOptions"]["AuthOptions"]) <= set(raw["HostOptions"]["AuthOptions"])


@pytest.mark.parametrize("name", ["default", "legacy-generic"])
def test_records_round_trip_unchanged(dm_store, name):
    """Loaded (typed by the driver's own Config where the driver is installed) and saved:
    config.json is byte-for-byte docker-machine's again; our data went to machine.json."""
    from machine.api import Machines
    from machine.errors import MachineError

    path = dm_store / "machines" / name / "config.json"
    before = json.loads(path.read_text())
    m = Machines(dm_store)
    host = m.load(name)
    try:
        m.driver_for(host, persist=False)
    except MachineError:
        pass  # a driver this install lacks (virtualbox here): its record still round-trips as it was
    m.store.save(host)
    assert json.loads(path.read_text()) == before
    assert json.loads((dm_store / "machines" / name / "machine.json").read_text())["Machine"]["Phase"] == "ready"
    # a change the user makes is the only difference
    host.engine.labels.append("team=ops")
    m.store.save(host)
    after = json.loads(path.read_text())
    assert after["HostOptions"]["EngineOptions"].pop("Labels") == ["env=legacy", "team=ops"]
    before["HostOptions"]["EngineOptions"].pop("Labels")
    assert after == before


def test_docker_machine_rewriting_config_json_loses_nothing_of_ours(dm_store):
    """docker-machine rewrites config.json with its own fields only; our journal lives beside it."""
    from machine.api import Machines

    m = Machines(dm_store)
    host = m.load("legacy-generic")
    host.machine.journal.append({"kind": "thing", "id": "t1"})
    host.engine.install = "package"
    m.store.save(host)
    path = dm_store / "machines" / "legacy-generic" / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))  # what `docker-machine ip` does to it
    back = m.load("legacy-generic")
    assert back.machine.journal == [{"kind": "thing", "id": "t1"}] and back.engine.install == "package"


def test_a_secret_docker_machine_recorded_stays_where_it_put_it(dm_store):
    """docker-machine kept e.g. --openstack-password in config.json; we never add a secret there,
    but one it wrote is written back unchanged (its own rm on a shared store needs it)."""
    from machine.api import Machines

    path = dm_store / "machines" / "legacy-generic" / "config.json"
    rec = json.loads(path.read_text())
    rec["DriverName"] = "openstack"
    rec["Driver"].update({"Password": "dm-secret", "AuthUrl": "https://keystone.invalid/v3", "FlavorName": "m1",
                          "ImageName": "i"})
    path.write_text(json.dumps(rec))
    m = Machines(dm_store)
    host = m.load("legacy-generic")
    driver = m.driver_for(host, persist=False)
    assert driver.config.password == "dm-secret"
    m.store.save(host)
    assert json.loads(path.read_text())["Driver"]["Password"] == "dm-secret"
