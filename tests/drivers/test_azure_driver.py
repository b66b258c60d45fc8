"""The azure driver through the real SDKs (azure-identity, azure-mgmt-*) against the project's ARM emulator.

Emulator, not Azure: tests/emulators/azure.py serves the documented REST API over TLS on
127.0.0.1 with a test CA; azure-identity's default chain gets its token from the
emulator's managed-identity endpoint. Driver level here (the emulator's VMs are records;
their loopback addresses lead nowhere); the full `machine create` with provisioning is
tests/e2e/test_azure_e2e.py, the CLI edges tests/drivers/test_azure_cli.py.
"""
from __future__ import annotations

import base64
import os

import pytest

pytest.importorskip("azure.mgmt.compute")
pytest.importorskip("azure.identity")

from emulators.azure import CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION, TENANT  # noqa: E402
from emulators.fixtures import azure_emu, azure_env, azure_options  # noqa: E402,F401

from machine.driver import DriverContext  # noqa: E402
from machine.errors import MachineError, UsageError  # noqa: E402
from machine.model import State  # noqa: E402

INJECTED = {"error": {"code": "InternalOperationError", "message": "injected failure"}}


@pytest.fixture
def make_driver(azure_emu, azure_env, tmp_path):
    from machine.drivers.azure import AzureConfig, AzureDriver

    def make(name="m1", **opts):
        cfg = AzureConfig.from_options(azure_options(azure_emu, **opts), driver_name="azure", machine_name=name)
        mdir = tmp_path / "machines" / name
        mdir.mkdir(parents=True, exist_ok=True)
        drv = AzureDriver(cfg, DriverContext.scratch(name, mdir, root=tmp_path / "machines"))
        drv.poll_step = 0.05
        return drv

    return make


def mutating(emu):
    return [(c.method, c.path) for c in emu.api_calls(mutating=True)]


def test_full_lifecycle_leaves_nothing(make_driver, azure_emu):
    d = make_driver("life", tag=["team=ci"])
    d.pre_create_check()
    assert mutating(azure_emu) == [] and azure_emu.owned() == [], "the pre-create check created something"
    d.create()
    c = d.config
    assert c.ip_address.startswith("127.40.0.") and c.private_address.startswith("192.168.")
    assert c.ssh_key_path.endswith("id_rsa") and os.stat(c.ssh_key_path).st_mode & 0o777 == 0o600
    kinds = [e["kind"] for e in d.journal]
    assert kinds == ["resource_group", "vnet", "subnet", "nsg", "public_ip", "nic", "disk", "vm"]
    vm = azure_emu.get(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/machines/providers/"
                       "Microsoft.Compute/virtualMachines/life")
    assert vm["tags"] == {"team": "ci", "machine-name": "life"}
    p = vm["properties"]
    assert p["osProfile"]["adminUsername"] == "docker-user"
    assert p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    key = p["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"]
    assert key.startswith("ssh-rsa ") and open(c.ssh_key_path + ".pub").read().strip() == key
    assert p["storageProfile"]["imageReference"] == {"publisher": "debian", "offer": "debian-12", "sku": "12",
                                                     "version": "latest"}
    assert p["storageProfile"]["osDisk"]["name"] == "life-os-disk"
    nsg = azure_emu.get(vm["id"].replace("Microsoft.Compute/virtualMachines/life",
                                         "Microsoft.Network/networkSecurityGroups/life-firewall"))
    rules = {(r["properties"]["destinationPortRange"], r["properties"]["protocol"],
              r["properties"]["sourceAddressPrefix"]) for r in nsg["properties"]["securityRules"]}
    assert rules == {("22", "Tcp", "*"), ("2376", "Tcp", "*"), ("2377", "Tcp", "VirtualNetwork"),
                     ("7946", "Tcp", "VirtualNetwork"), ("7946", "Udp", "VirtualNetwork"),
                     ("4789", "Udp", "VirtualNetwork")}
    assert d.state() == State.RUNNING
    assert d.addresses() == [c.ip_address, c.private_address] and d.default_engine_port() == 2376

    d.stop()
    assert d.state() == State.STOPPED and vm["_power"] == "deallocated"
    d.start()
    assert d.state() == State.RUNNING and c.ip_address.startswith("127.40.0.")
    d.restart()
    assert d.state() == State.RUNNING
    d.kill()
    assert d.state() == State.STOPPED and vm["_power"] == "stopped"
    d.remove()
    azure_emu.settle()
    assert azure_emu.owned() == [] and len(d.journal) == 0
    d.remove()   # idempotent
    with pytest.raises(MachineError, match="does not exist"):
        d.state()


def test_rm_is_idempotent_when_resources_vanished(make_driver, azure_emu):
    d = make_driver("gone")
    d.create()
    with azure_emu.lock:   # someone deleted the whole group in the portal
        azure_emu.resources.clear()
        azure_emu.groups.clear()
    d.remove()
    assert azure_emu.owned() == [] and len(d.journal) == 0


def test_shared_network_and_group_go_with_the_last_machine(make_driver, azure_emu):
    a, b = make_driver("sa"), make_driver("sb")
    a.create()
    b.create()
    assert [(e["kind"], e.get("adopted", False)) for e in b.journal][:3] == [
        ("resource_group", True), ("vnet", True), ("subnet", True)]
    assert a.config.private_address != b.config.private_address
    a.remove()
    azure_emu.settle()
    left = azure_emu.owned()
    assert any(r.endswith("/virtualNetworks/docker-machine-vnet") for r in left), left
    assert any(r.endswith("/virtualMachines/sb") for r in left)
    b.remove()
    azure_emu.settle()
    assert azure_emu.owned() == []


def test_group_and_network_of_the_user_are_kept(make_driver, azure_emu):
    d0 = make_driver("first")
    d0.create()
    with azure_emu.lock:   # as if the user had made the group and the network (no tag of ours)
        azure_emu.groups["machines"]["tags"] = {}
        azure_emu.get(d0.journal.of_kind("vnet")[0]["id"])["tags"] = {}
    d0.journal.entries[:] = [e for e in d0.journal.entries if e["kind"] not in ("resource_group", "vnet", "subnet")]
    d = make_driver("second")
    d.create()
    assert not {"resource_group", "vnet", "subnet"} & {e["kind"] for e in d.journal}
    d.remove()
    d0.remove()
    azure_emu.settle()
    left = azure_emu.owned()
    assert left == sorted([f"/subscriptions/{SUBSCRIPTION}/resourceGroups/machines",
                           f"/subscriptions/{SUBSCRIPTION}/resourceGroups/machines/providers/Microsoft.Network/"
                           "virtualNetworks/docker-machine-vnet",
                           f"/subscriptions/{SUBSCRIPTION}/resourceGroups/machines/providers/Microsoft.Network/"
                           "virtualNetworks/docker-machine-vnet/subnets/docker-machine"]), left


def test_options_reach_the_vm(make_driver, azure_emu, tmp_path):
    data = tmp_path / "cloud-init.yaml"
    data.write_text("#cloud-config\npackages: [htop]\n")
    d = make_driver("opts", zone="2", spot=True, **{"max-price": "0.05", "custom-data": str(data),
                    "static-public-ip": True, "dns-label": "opts-dns", "open-port": ["8080", "53/udp"],
                    "storage-type": "Premium_LRS", "disk-size": 64, "private-ip-address": "192.168.7.7",
                    "ssh-user": "ops", "vnet": "netrg:corp", "subnet": "machines", "subnet-prefix": "192.168.0.0/16"})
    d.create()
    vm = azure_emu.get(d._rid("vm"))
    p = vm["properties"]
    assert vm["zones"] == ["2"]
    assert p["priority"] == "Spot" and p["evictionPolicy"] == "Deallocate" and p["billingProfile"]["maxPrice"] == 0.05
    assert base64.b64decode(p["osProfile"]["customData"]).decode() == data.read_text()
    assert p["storageProfile"]["osDisk"]["diskSizeGB"] == 64
    assert p["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"] == "Premium_LRS"
    assert p["osProfile"]["adminUsername"] == "ops"
    pip = azure_emu.get(d._rid("public_ip"))
    assert pip["properties"]["publicIPAllocationMethod"] == "Static" and pip["sku"]["name"] == "Standard"
    assert pip["properties"]["dnsSettings"]["domainNameLabel"] == "opts-dns"
    assert d.config.private_address == "192.168.7.7"
    assert any(r.endswith("/resourceGroups/netrg/providers/Microsoft.Network/virtualNetworks/corp")
               for r in azure_emu.owned())
    nsg = azure_emu.get(d._rid("nsg"))
    ports = {(r["properties"]["destinationPortRange"], r["properties"]["protocol"])
             for r in nsg["properties"]["securityRules"]}
    assert {("8080", "Tcp"), ("53", "Udp")} <= ports
    d.remove()
    azure_emu.settle()
    assert azure_emu.owned() == []


def test_private_only_and_availability_set(make_driver, azure_emu):
    d = make_driver("priv", **{"no-public-ip": True, "availability-set": "pool"})
    d.create()
    assert d.config.use_private_ip and d.config.ip_address == d.config.private_address
    assert "public_ip" not in [e["kind"] for e in d.journal]
    aset = azure_emu.get(d._rid("availability_set", "pool"))
    assert aset["properties"]["virtualMachines"][0]["id"].endswith("/priv")
    d.remove()
    azure_emu.settle()
    assert azure_emu.owned() == []


def test_gallery_image(make_driver, azure_emu):
    image = azure_emu.add_gallery_image("images", "gallery", "docker-host")
    d = make_driver("gal", image=image)
    d.pre_create_check()
    d.create()
    assert azure_emu.get(d._rid("vm"))["properties"]["storageProfile"]["imageReference"] == {"id": image}
    d.remove()


def test_batch_states_one_call_per_subscription(make_driver, azure_emu):
    from machine.drivers.azure import AzureDriver

    a, b = make_driver("ba"), make_driver("bb")
    a.create()
    b.create()
    b.stop()
    before = len(azure_emu.calls)
    assert AzureDriver.batch_states([a, b]) == {"ba": State.RUNNING, "bb": State.STOPPED}
    assert [c.path for c in azure_emu.calls[before:]] == [
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines"]
    a.remove()
    b.remove()


def test_typed_client_secret(make_driver, azure_emu, monkeypatch):
    for var in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.delenv(var)
    d = make_driver("sp", **{"client-id": CLIENT_ID, "tenant-id": TENANT, "client-secret": CLIENT_SECRET,
                             "authority-host": azure_emu.url})
    assert "ClientSecret" not in d.config.to_record()
    assert d.config.secrets() == {"ClientSecret": CLIENT_SECRET}
    d.create()
    assert d.state() == State.RUNNING
    d.remove()
    azure_emu.settle()
    assert azure_emu.owned() == []


def test_throttling_is_retried(make_driver, azure_emu):
    d = make_driver("busy")
    d.pre_create_check()
    azure_emu.fail_call(0, 429, {"error": {"code": "TooManyRequests", "message": "The request is being throttled."}},
                        headers={"Retry-After": "0", "retry-after-ms": "10"},
                        match=lambda m, p: m == "PUT" and "virtualMachines" in p)
    d.create()
    assert sum(1 for c in azure_emu.api_calls() if c.method == "PUT" and "virtualMachines" in c.path) == 2
    d.remove()


def test_long_operations_report_progress_and_honour_the_deadline(make_driver, azure_emu):
    lines = []
    d = make_driver("slow", timeout=1)
    d.ctx = DriverContext(**{**d.ctx.__dict__, "report": lines.append})
    d.report_every = 0.1
    azure_emu.lro_seconds = 3
    with pytest.raises(MachineError, match="did not finish within 1s") as e:
        d.create()
    assert "--azure-timeout" in str(e.value)
    assert lines and "InProgress" in lines[0]
    azure_emu.lro_seconds = 0
    d.remove()
    azure_emu.settle()
    assert azure_emu.owned() == []


@pytest.mark.parametrize("opts, message", [
    ({"size": "Standard_Imaginary_v9"}, "VM size Standard_Imaginary_v9 is not offered in westus"),
    ({"image": "debian:debian-12:13:latest"}, "image debian:debian-12:13:latest is not available in westus"),
    ({"image": "debian:debian-12:12:0.1"}, "image debian:debian-12:12:0.1 is not available"),
    ({"location": "marsnorth"}, "NoRegisteredProviderFound"),
    ({"subscription-id": "00000000-0000-0000-0000-000000000bad"}, "SubscriptionNotFound"),
])
def test_bad_input_is_refused_before_anything_exists(make_driver, azure_emu, opts, message):
    d = make_driver("bad", **opts)
    with pytest.raises(MachineError) as e:
        d.pre_create_check()
    assert message in str(e.value) and "\n" not in str(e.value)
    assert mutating(azure_emu) == [] and azure_emu.owned() == []


def test_quota_is_checked_before_anything_exists(make_driver, azure_emu):
    azure_emu.quota["cores"] = 1
    with pytest.raises(MachineError, match=r"quota exceeded: Standard_B2s needs 2 vCPUs in westus, 0 of 1"):
        make_driver("q").pre_create_check()
    azure_emu.quota.update(cores=20, PublicIPAddresses=0)
    with pytest.raises(MachineError, match="0 of 0 public IP addresses"):
        make_driver("q").pre_create_check()
    assert mutating(azure_emu) == []


def test_bad_credentials(make_driver, azure_emu, monkeypatch):
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    with pytest.raises(MachineError, match="Azure did not accept the credentials") as e:
        make_driver("cred").pre_create_check()
    assert "az login" in e.value.hint
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    d = make_driver("cred", **{"client-id": CLIENT_ID, "tenant-id": TENANT, "client-secret": "not-it",
                               "authority-host": azure_emu.url})
    with pytest.raises(MachineError, match="AADSTS7000215: Invalid client secret provided"):
        d.pre_create_check()
    assert azure_emu.api_calls() == []


def test_usage_errors():
    from machine.drivers.azure import AzureConfig

    def cfg(**kw):
        return AzureConfig.from_options({"subscription-id": "s", **kw}, driver_name="azure", machine_name="x")

    for kw, msg in [({"zone": "1", "availability-set": "a"}, "zone or an availability set"),
                    ({"max-price": "0.1"}, "--azure-max-price is for Spot"),
                    ({"image": "debian:debian-12"}, "invalid --azure-image"),
                    ({"ssh-user": "root"}, "invalid --azure-ssh-user"),
                    ({"private-ip-address": "10.0.0.4"}, "inside 192.168.0.0/16"),
                    ({"client-secret": "x"}, "needs the application and its tenant"),
                    ({"storage-type": "Floppy"}, "invalid --azure-storage-type"),
                    ({"open-port": ["80/sctp"]}, "invalid --azure-open-port"),
                    ({"environment": "AzureGermanCloud"}, "closed in 2021")]:
        with pytest.raises(UsageError, match=msg):
            cfg(**kw)
    with pytest.raises(UsageError, match="subscription is required"):
        AzureConfig.from_options({}, driver_name="azure", machine_name="x", environ={})
    c = AzureConfig.from_options({"dns-label": "x"}, driver_name="azure", machine_name="x",
                                 environ={"AZURE_SUBSCRIPTION_ID": "s"})
    assert c.subscription_id == "s" and c.to_record()["DNSLabel"] == "x"
    assert any("--azure-dns" in s.aliases for s in AzureConfig.options())


def test_docker_machine_record_is_removed_by_its_names(make_driver, azure_emu):
    d = make_driver("legacy")
    d.create()
    d.journal.entries.clear()   # a docker-machine record has no journal
    d.remove()
    azure_emu.settle()
    left = azure_emu.owned()
    assert not any("/legacy" in r for r in left), left
