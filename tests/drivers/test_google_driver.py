"""The google driver through the real SDK (google-auth, google-cloud-compute) against the project's Compute emulator.

Emulator, not Google Cloud: tests/emulators/google.py serves the documented Compute
Engine v1 REST API on 127.0.0.1; application default credentials are a service-account
key file whose token URI is the emulator's. Driver level here; the full `machine create`
with provisioning is tests/e2e/test_google_e2e.py, the CLI edges test_google_cli.py.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("google.cloud.compute_v1")

from emulators.fixtures import google_emu, google_env, google_key, google_options  # noqa: E402,F401

from machine.driver import DriverContext  # noqa: E402
from machine.errors import MachineError, UsageError  # noqa: E402
from machine.model import State  # noqa: E402


@pytest.fixture
def make_driver(google_emu, google_env, tmp_path):
    from machine.drivers.google import GoogleConfig, GoogleDriver

    def make(name="m1", **opts):
        cfg = GoogleConfig.from_options(google_options(google_emu, **opts), driver_name="google", machine_name=name)
        mdir = tmp_path / "machines" / name
        mdir.mkdir(parents=True, exist_ok=True)
        drv = GoogleDriver(cfg, DriverContext.scratch(name, mdir, root=tmp_path / "machines"))
        drv.poll_step = 0.05
        return drv

    return make


def mutating(emu):
    return [(c.method, c.path) for c in emu.api_calls(mutating=True)]


def test_full_lifecycle_leaves_nothing(make_driver, google_emu):
    d = make_driver("life", tags="web,ci", label=["team=ci"])
    d.pre_create_check()
    assert mutating(google_emu) == [] and google_emu.owned() == [], "the pre-create check created something"
    d.create()
    c = d.config
    assert c.ip_address.startswith("127.50.0.") and c.internal_ip.startswith("10.128.")
    assert c.image_link == "projects/debian-cloud/global/images/debian-12-bookworm-v20240213"
    assert os.stat(c.ssh_key_path).st_mode & 0o777 == 0o600
    assert [(e["kind"], e["id"]) for e in d.journal] == [
        ("firewall", "machine-life"), ("firewall", "machine-life-swarm"), ("disk", "life"), ("instance", "life")]
    inst = google_emu.instances["machine-test/us-central1-a/life"]
    assert inst["tags"]["items"] == ["machine-life", "web", "ci"] and inst["labels"] == {"team": "ci"}
    meta = {i["key"]: i["value"] for i in inst["metadata"]["items"]}
    assert meta["ssh-keys"].startswith("docker-user:ssh-rsa ")
    assert meta["ssh-keys"].split(":", 1)[1].split()[:2] == open(c.ssh_key_path + ".pub").read().split()[:2]
    assert inst["serviceAccounts"][0]["email"] == "default"
    fw = google_emu.firewalls["machine-test/machine-life"]
    assert fw["targetTags"] == ["machine-life"] and fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "2376"]}]
    swarm = google_emu.firewalls["machine-test/machine-life-swarm"]
    assert swarm["sourceTags"] == ["machine-life"] and len(swarm["allowed"]) == 4
    assert d.state() == State.RUNNING
    assert d.addresses() == [c.ip_address, c.internal_ip] and d.private_address() == c.internal_ip

    d.stop()
    assert d.state() == State.STOPPED
    d.start()
    assert d.state() == State.RUNNING and c.ip_address.startswith("127.50.0.")
    d.restart()
    assert d.state() == State.RUNNING
    d.kill()
    assert d.state() == State.STOPPED
    d.remove()
    google_emu.settle()
    assert google_emu.owned() == [] and len(d.journal) == 0
    d.remove()   # idempotent
    with pytest.raises(MachineError, match="instance life does not exist"):
        d.state()


def test_rm_is_idempotent_when_resources_vanished(make_driver, google_emu):
    d = make_driver("gone")
    d.create()
    with google_emu.lock:
        google_emu.instances.clear()
        google_emu.disks.clear()
        google_emu.firewalls.clear()
    d.remove()
    assert google_emu.owned() == [] and len(d.journal) == 0


def test_options_reach_the_instance(make_driver, google_emu, tmp_path):
    script = tmp_path / "startup.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    ud = tmp_path / "user-data"
    ud.write_text("#cloud-config\n")
    d = make_driver("opts", spot=True, accelerator="type=nvidia-tesla-t4,count=1", **{
        "machine-type": "n1-standard-4", "disk-size": 50, "disk-type": "pd-ssd", "username": "ops",
        "startup-script": str(script), "user-data": str(ud), "metadata": ["role=ci"], "open-port": ["8080", "53/udp"],
        "service-account": "runner@machine-test.iam.gserviceaccount.com",
        "scopes": "https://www.googleapis.com/auth/cloud-platform", "machine-image": "family/ubuntu-2204-lts"})
    d.config.machine_image = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
    d.create()
    inst = google_emu.instances["machine-test/us-central1-a/opts"]
    assert inst["scheduling"]["provisioningModel"] == "SPOT" and inst["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert inst["scheduling"]["instanceTerminationAction"] == "STOP"
    assert inst["guestAccelerators"] == [{"acceleratorType": "zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
                                          "acceleratorCount": 1}]
    meta = {i["key"]: i["value"] for i in inst["metadata"]["items"]}
    assert meta["startup-script"] == script.read_text() and meta["user-data"] == ud.read_text()
    assert meta["role"] == "ci" and meta["ssh-keys"].startswith("ops:")
    disk = google_emu.disks["machine-test/us-central1-a/opts"]
    assert disk["sizeGb"] == "50" and disk["type"].endswith("/pd-ssd")
    assert disk["sourceImage"].endswith("ubuntu-2204-jammy-v20240110")
    assert inst["serviceAccounts"] == [{"email": "runner@machine-test.iam.gserviceaccount.com",
                                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    fw = google_emu.firewalls["machine-test/machine-opts"]
    assert {"IPProtocol": "udp", "ports": ["53"]} in fw["allowed"]
    d.remove()
    google_emu.settle()
    assert google_emu.owned() == []


def test_internal_only(make_driver, google_emu):
    d = make_driver("priv", **{"use-internal-ip-only": True})
    d.create()
    assert d.config.ip_address == d.config.internal_ip
    assert google_emu.instances["machine-test/us-central1-a/priv"]["networkInterfaces"][0].get("accessConfigs") is None
    d.remove()


def test_reserved_address_by_name(make_driver, google_emu):
    ip = google_emu.reserve_address("ci-ip")
    d = make_driver("addr", address="ci-ip")
    d.create()
    assert d.config.address == ip and d.config.ip_address == ip
    d.stop()
    d.start()
    assert d.config.ip_address == ip   # a static address survives stop/start
    d.remove()
    with pytest.raises(MachineError, match="no reserved address nope"):
        make_driver("addr2", address="nope").pre_create_check()


def test_batch_states_one_call_per_project(make_driver, google_emu):
    from machine.drivers.google import GoogleDriver

    a, b = make_driver("ba"), make_driver("bb")
    a.create()
    b.create()
    b.stop()
    before = len(google_emu.calls)
    assert GoogleDriver.batch_states([a, b]) == {"ba": State.RUNNING, "bb": State.STOPPED}
    assert [c.path for c in google_emu.calls[before:]] == ["/compute/v1/projects/machine-test/aggregated/instances"]
    a.remove()
    b.remove()


def test_operation_error_and_deadline(make_driver, google_emu):
    lines = []
    d = make_driver("slow", timeout=1)
    d.ctx = DriverContext(**{**d.ctx.__dict__, "report": lines.append})
    d.report_every = 0.1
    google_emu.op_seconds = 5
    with pytest.raises(MachineError, match="did not finish within 1s") as e:
        d.create()
    assert "--google-timeout" in str(e.value)
    google_emu.op_seconds = 0
    d.remove()
    google_emu.settle()
    assert google_emu.owned() == []


@pytest.mark.parametrize("opts, message", [
    ({"machine-type": "n9-imaginary-64"}, "machine type n9-imaginary-64 is not offered in us-central1-a"),
    ({"machine-image": "projects/debian-cloud/global/images/family/debian-99"}, "image projects/debian-cloud/"
                                                                              "global/images/family/debian-99 not found"),
    ({"disk-type": "pd-floppy"}, "disk type pd-floppy does not exist"),
    ({"accelerator": "type=nvidia-tesla-x1,count=1"}, "accelerator nvidia-tesla-x1 is not offered"),
    ({"network": "corp"}, "network corp does not exist"),
    ({"project": "someone-elses"}, "The resource 'projects/someone-elses' was not found"),
])
def test_bad_input_is_refused_before_anything_exists(make_driver, google_emu, opts, message):
    d = make_driver("bad", **opts)
    with pytest.raises(MachineError) as e:
        d.pre_create_check()
    assert message in str(e.value) and "\n" not in str(e.value)
    assert mutating(google_emu) == [] and google_emu.owned() == []


def test_quota_is_checked_before_anything_exists(make_driver, google_emu):
    google_emu.quota["CPUS"] = 1
    with pytest.raises(MachineError, match=r"quota exceeded: CPUS in us-central1 has 0 of 1 in use, 2 more needed"):
        make_driver("q").pre_create_check()
    google_emu.quota.update(CPUS=24, NVIDIA_T4_GPUS=0)
    with pytest.raises(MachineError, match="NVIDIA_T4_GPUS"):
        make_driver("q", accelerator="nvidia-tesla-t4:1").pre_create_check()
    assert mutating(google_emu) == []


def test_bad_and_missing_credentials(make_driver, google_emu, monkeypatch, tmp_path):
    from emulators.google import GoogleEmulator

    other = GoogleEmulator()   # a key the emulator never issued (never started: only its key file is used)
    other._server = type("S", (), {"server_address": ("127.0.0.1", google_emu.port)})()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", other.service_account(tmp_path, "stranger"))
    with pytest.raises(MachineError, match="Google did not accept the credentials") as e:
        make_driver("cred").pre_create_check()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in e.value.hint and "\n" not in str(e.value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    with pytest.raises(MachineError, match="no Google credentials"):
        make_driver("cred").pre_create_check()
    assert mutating(google_emu) == []


def test_usage_errors():
    from machine.drivers.google import GoogleConfig

    def cfg(**kw):
        return GoogleConfig.from_options({"project": "p", **kw}, driver_name="google", machine_name="x")

    for kw, msg in [({"preemptible": True, "spot": True}, "two names for one thing"),
                    ({"use-internal-ip-only": True, "address": "1.2.3.4"}, "leaves no place"),
                    ({"tags": "Bad_Tag"}, "invalid --google-tags"),
                    ({"accelerator": "type=,count=x"}, "invalid --google-accelerator"),
                    ({"username": "root"}, "invalid --google-username"),
                    ({"zone": "moon"}, "invalid --google-zone"),
                    ({"maintenance-policy": "SOMETIMES"}, "invalid --google-maintenance-policy")]:
        with pytest.raises(UsageError, match=msg):
            cfg(**kw)
    c = GoogleConfig.from_options({}, driver_name="google", machine_name="x",
                                  environ={"GOOGLE_PROJECT": "p", "GOOGLE_TAGS": "a,b"})
    assert c.project == "p" and c.tags == ["a", "b"] and c.to_record()["Tags"] == ["a", "b"]
