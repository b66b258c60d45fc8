"""The emulators themselves, driven by the real SDK clients: the status codes, error bodies and
long-running-operation behaviour the drivers rely on, as the REST references describe them."""
from __future__ import annotations

import time

import pytest

from emulators.fixtures import azure_emu, azure_env, google_emu, google_env, google_key  # noqa: F401


# ---- Azure ------------------------------------------------------------------------------------
@pytest.fixture
def arm(azure_emu, azure_env):
    pytest.importorskip("azure.mgmt.network")
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from emulators.azure import SUBSCRIPTION

    cred = DefaultAzureCredential()
    kw = dict(base_url=azure_emu.url, credential_scopes=[azure_emu.url + "/.default"], polling_interval=0,
              retry_total=0)
    return ResourceManagementClient(cred, SUBSCRIPTION, **kw), NetworkManagementClient(cred, SUBSCRIPTION, **kw)


def test_azure_errors_have_arm_bodies(arm, azure_emu):
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.mgmt.network import models as nm

    rm, net = arm
    with pytest.raises(ResourceNotFoundError) as e:
        net.network_interfaces.get("nope", "nic")
    assert e.value.error.code == "ResourceGroupNotFound" and "Resource group 'nope' could not be found" in str(e.value)
    rm.resource_groups.create_or_update("rg", {"location": "westus"})
    with pytest.raises(ResourceNotFoundError) as e:
        net.network_interfaces.get("rg", "nic")
    assert e.value.error.code == "ResourceNotFound" and "aka.ms/ARMResourceNotFound" in str(e.value)
    vnet = net.virtual_networks.begin_create_or_update("rg", "v", nm.VirtualNetwork(
        location="westus", address_space=nm.AddressSpace(address_prefixes=["10.0.0.0/16"]))).result()
    assert vnet.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as e:
        net.subnets.begin_create_or_update("rg", "v", "s", nm.Subnet(address_prefix="10.9.0.0/24")).result()
    assert e.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    sub = net.subnets.begin_create_or_update("rg", "v", "s", nm.Subnet(address_prefix="10.0.1.0/24")).result()
    net.network_interfaces.begin_create_or_update("rg", "nic", nm.NetworkInterface(
        location="westus", ip_configurations=[nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1", subnet=nm.Subnet(id=sub.id))])).result()
    with pytest.raises(HttpResponseError) as e:
        net.subnets.begin_delete("rg", "v", "s").result()
    assert e.value.error.code == "InUseSubnetCannotBeDeleted"
    net.network_interfaces.begin_delete("rg", "nic").result()
    net.network_interfaces.begin_delete("rg", "nic").result()   # a missing resource deletes as 204
    rm.resource_groups.begin_delete("rg").result()
    assert azure_emu.owned() == []


def test_azure_long_running_operations_poll(arm, azure_emu):
    from azure.mgmt.network import models as nm

    rm, net = arm
    rm.resource_groups.create_or_update("rg", {"location": "westus"})
    azure_emu.lro_seconds = 0.5
    poller = net.network_security_groups.begin_create_or_update("rg", "n", nm.NetworkSecurityGroup(location="westus"))
    assert poller.status() == "InProgress" and not poller.done()
    t0 = time.monotonic()
    assert poller.result().provisioning_state == "Succeeded"
    assert 0.3 < time.monotonic() - t0 < 10


def test_azure_tokens(azure_emu, azure_env, monkeypatch):
    import requests

    r = requests.get(f"{azure_emu.url}/subscriptions/x/resourcegroups/y", verify=azure_emu.ca_pem, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
    r = requests.get(f"{azure_emu.url}/msi/token", params={"resource": "x"}, verify=azure_emu.ca_pem, timeout=10)
    assert r.status_code == 400
    r = requests.get(f"{azure_emu.url}/subscriptions/x/resourcegroups/y", verify=azure_emu.ca_pem, timeout=10,
                     headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


# ---- Google -----------------------------------------------------------------------------------
@pytest.fixture
def gce(google_emu, google_env):
    pytest.importorskip("google.cloud.compute_v1")
    import google.auth
    from google.cloud import compute_v1

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    opts = {"api_endpoint": google_emu.url}
    return compute_v1, {n: getattr(compute_v1, n)(credentials=creds, client_options=opts)
                        for n in ("InstancesClient", "FirewallsClient", "GlobalOperationsClient", "DisksClient",
                                  "ZoneOperationsClient")}


def test_google_errors_have_compute_bodies(gce, google_emu):
    from google.api_core import exceptions as gx

    cv, c = gce
    with pytest.raises(gx.NotFound) as e:
        c["InstancesClient"].get(project="machine-test", zone="us-central1-a", instance="nope")
    assert "projects/machine-test/zones/us-central1-a/instances/nope' was not found" in e.value.message
    fw = cv.Firewall(name="fw", network="global/networks/default", allowed=[cv.Allowed(I_p_protocol="tcp", ports=["22"])])
    op = c["FirewallsClient"].insert_unary(project="machine-test", firewall_resource=fw)
    assert str(op.status.name if hasattr(op.status, "name") else op.status) in ("RUNNING", "DONE")
    done = c["GlobalOperationsClient"].wait(project="machine-test", operation=op.name)
    assert done.status.name == "DONE"
    with pytest.raises(gx.Conflict) as e:
        c["FirewallsClient"].insert_unary(project="machine-test", firewall_resource=fw)
    assert "already exists" in e.value.message
    c["GlobalOperationsClient"].wait(project="machine-test", operation=c["FirewallsClient"].delete_unary(
        project="machine-test", firewall="fw").name)
    assert google_emu.owned() == []


def test_google_operations_and_disk_in_use(gce, google_emu):
    from google.api_core import exceptions as gx

    cv, c = gce
    google_emu.op_seconds = 0.5
    inst = cv.Instance(name="i1", machine_type="zones/us-central1-a/machineTypes/e2-small",
                       disks=[cv.AttachedDisk(boot=True, auto_delete=True, initialize_params=cv.AttachedDiskInitializeParams(
                           source_image="projects/debian-cloud/global/images/family/debian-12"))],
                       network_interfaces=[cv.NetworkInterface(network="global/networks/default",
                                                               access_configs=[cv.AccessConfig(name="External NAT")])])
    op = c["InstancesClient"].insert_unary(project="machine-test", zone="us-central1-a", instance_resource=inst)
    got = c["ZoneOperationsClient"].get(project="machine-test", zone="us-central1-a", operation=op.name)
    assert got.status.name == "RUNNING"
    c["ZoneOperationsClient"].wait(project="machine-test", zone="us-central1-a", operation=op.name)
    got = c["InstancesClient"].get(project="machine-test", zone="us-central1-a", instance="i1")
    assert got.status == "RUNNING" and got.network_interfaces[0].access_configs[0].nat_i_p.startswith("127.50.0.")
    with pytest.raises(gx.BadRequest) as e:
        c["DisksClient"].delete_unary(project="machine-test", zone="us-central1-a", disk="i1")
    assert "is already being used by" in e.value.message
    google_emu.op_seconds = 0
    c["ZoneOperationsClient"].wait(project="machine-test", zone="us-central1-a", operation=c["InstancesClient"].delete_unary(
        project="machine-test", zone="us-central1-a", instance="i1").name)
    assert google_emu.owned() == []   # the boot disk was auto-deleted with the instance


def test_google_rejects_unknown_keys(google_emu, google_env, tmp_path, monkeypatch):
    import requests

    r = requests.get(f"{google_emu.url}/compute/v1/projects/machine-test/zones/us-central1-a", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["errors"][0]["reason"] == "authError"
    r = requests.post(f"{google_emu.url}/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                       "assertion": "a.b.c"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
