"""The vsphere driver against vcsim (govmomi's simulator, built by the tests from Debian's sources).

Real pyVmomi over real HTTPS (the simulator's certificate is signed by a CA the test makes, so
TLS verification stays on), real vSphere tasks. What vcsim cannot do: boot a guest. Its VMs
report the address `--vsphere-cfgparam SET.guest.ipAddress=…` gives them, and nothing runs there.
"""
from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from machine.driver import DriverContext, Journal
from machine.drivers.vsphere import VSphereConfig, VSphereDriver
from machine.errors import MachineError, NotFound, UsageError
from machine.model import State
from vsphere.fixtures import PASSWORD, USER, vcsim, vm_names, vsphere_env, vsphere_opts  # noqa: F401
from vsphere.vcsim_harness import TEMPLATE, find

pytestmark = [pytest.mark.vsphere, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
IP = "127.30.0.9"


def make(tmp_path, opts, name="vs1", **over):
    values = dict(opts)
    values.update(over)
    cfg = VSphereConfig.from_options(values, driver_name="vsphere", machine_name=name)
    mdir = tmp_path / name
    mdir.mkdir(parents=True, exist_ok=True)
    lines = []
    base = DriverContext.scratch(name, mdir, root=tmp_path)
    ctx = DriverContext(machine_name=name, machine_dir=mdir, cache_dir=base.cache_dir, shared_dir=base.shared_dir,
                        journal=Journal(), lock=base.lock, peer_claims=base.peer_claims, report=lines.append)
    d = VSphereDriver(cfg, ctx)
    d.lines = lines
    return d


def vm_of(sim, name):
    from pyVmomi import vim

    found = find(sim.si, vim.VirtualMachine, name)
    return found[0] if found else None


def extra(vm) -> dict:
    return {o.key: o.value for o in vm.config.extraConfig}


# ---- lifecycle -----------------------------------------------------------------------------

def test_clone_reconfigure_power_destroy(tmp_path, vsphere_env, vsphere_opts, vm_names):
    sim = vsphere_env
    d = make(tmp_path, vsphere_opts, cpus=2, memory=1536, disk_size=4096,
             cfgparam=[f"SET.guest.ipAddress={IP}", "machine.test=yes"])
    d.pre_create_check()
    assert vm_names() == []                      # the check creates nothing
    d.create()
    assert d.config.ip_address == IP and d.ip() == IP
    assert vm_names() == ["vs1"]
    vm = vm_of(sim, "vs1")
    # journaled: the VM by its instance UUID and moref, the key
    kinds = {e["kind"]: e for e in d.journal}
    assert kinds["vm"]["id"] == vm.config.instanceUuid == d.config.instance_uuid
    assert kinds["vm"]["moref"] == vm._moId == d.config.vm_ref
    # reconfigured
    assert vm.config.hardware.numCPU == 2 and vm.config.hardware.memoryMB == 1536
    disks = [x for x in vm.config.hardware.device if type(x).__name__.endswith("VirtualDisk")]
    assert disks and disks[0].capacityInKB >= 4096 * 1024
    ex = extra(vm)
    assert ex["machine.test"] == "yes"
    # cloud-init through guestinfo: the machine's own key, for the ssh user
    user_data = base64.b64decode(ex["guestinfo.userdata"]).decode()
    assert ex["guestinfo.userdata.encoding"] == "base64"
    pub = Path(d.config.ssh_key_path + ".pub").read_text().strip()
    doc = json.loads(user_data.split("\n", 1)[1])
    assert pub in json.dumps(doc) and doc["users"][1]["name"] == "docker"
    assert json.loads(base64.b64decode(ex["guestinfo.metadata"]))["local-hostname"] == "vs1"
    assert stat.S_IMODE(os.stat(d.config.ssh_key_path).st_mode) == 0o600
    # power
    assert d.state() == State.RUNNING
    d.stop()
    assert d.state() == State.STOPPED
    d.stop()                                     # already off: nothing to do
    d.start()
    assert d.state() == State.RUNNING and d.config.ip_address == IP
    d.kill()
    assert d.state() == State.STOPPED
    d.kill()
    d.start()
    # destroy, twice
    d.remove()
    assert vm_names() == [] and list(d.journal) == []
    d.remove()
    with pytest.raises(NotFound, match="no longer exists"):
        d.state()


def test_record_round_trip_and_later_commands(tmp_path, vsphere_env, vsphere_opts, vm_names):
    """A later command builds the driver from the record (config.json) alone, env credentials at use."""
    d = make(tmp_path, vsphere_opts, cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    record = d.config.to_record()
    assert record["CloneFrom"] == TEMPLATE and record["VMRef"] == d.config.vm_ref
    assert "Password" not in record and "Username" not in record   # env credentials are not copied
    again = VSphereConfig.from_record(json.loads(json.dumps(record)))
    d2 = VSphereDriver(again, DriverContext(machine_name="vs1", machine_dir=d.machine_dir,
                                            cache_dir=tmp_path, shared_dir=tmp_path, journal=d.journal,
                                            lock=d.ctx.lock, peer_claims=lambda: []))
    assert d2.state() == State.RUNNING
    d2.remove()
    assert vm_names() == []


def test_seed_iso_on_datastore(tmp_path, vsphere_env, vsphere_opts, vm_names):
    from machine.drivers.qemu import seed
    from pyVmomi import vim

    sim = vsphere_env
    d = make(tmp_path, vsphere_opts, cloud_init_via="iso", cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    iso = d.config.seed_iso
    assert iso == "[LocalDS_0] vs1/machine-seed.iso"
    assert [e["id"] for e in d.journal if e["kind"] == "datastore-file"] == [iso]
    vm = vm_of(sim, "vs1")
    cds = [x for x in vm.config.hardware.device if isinstance(x, vim.vm.device.VirtualCdrom)]
    assert any(getattr(c.backing, "fileName", "") == iso for c in cds)
    assert "guestinfo.userdata" not in extra(vm)
    # the file on the datastore is a cidata volume with the machine's key
    ds = find(sim.si, vim.Datastore, "LocalDS_0")[0]
    local = Path(ds.info.url) / "vs1" / "machine-seed.iso"
    label, files = seed.read_iso(local)
    assert label == "cidata"
    assert Path(d.config.ssh_key_path + ".pub").read_text().split()[1] in files["user-data"]
    d.remove()
    assert vm_names() == [] and not local.exists()
    d.remove()


def test_own_cloud_init_goes_alongside(tmp_path, vsphere_env, vsphere_opts, vm_names):
    mine = tmp_path / "mine.yaml"
    mine.write_text("#cloud-config\nruncmd:\n  - [touch, /tmp/hello]\n")
    d = make(tmp_path, vsphere_opts, cloud_init=str(mine), cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    ud = base64.b64decode(extra(vm_of(vsphere_env, "vs1"))["guestinfo.userdata"]).decode()
    assert "multipart/mixed" in ud and "touch, /tmp/hello" in ud and "ssh_authorized_keys" in ud
    d.remove()
    assert vm_names() == []


def test_placement_by_cluster_host_pool_folder_network(tmp_path, vsphere_env, vsphere_opts, vm_names):
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    sim = vsphere_env
    dc = find(sim.si, vim.Datacenter, "DC0")[0]
    if not find(sim.si, vim.Folder, "machines"):
        dc.vmFolder.CreateFolder("machines")
    d = make(tmp_path, vsphere_opts, datacenter="DC0", hostsystem="DC0_C0/DC0_C0_H1", folder="machines",
             network=["DC0_DVPG0", "VM Network"], cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    vm = vm_of(sim, "vs1")
    assert vm.parent.name == "machines"
    assert vm.runtime.host.name == "DC0_C0_H1"
    assert sorted(n.name for n in vm.network) == ["DC0_DVPG0", "VM Network"]
    d.remove()
    assert vm_names() == []
    WaitForTask(find(sim.si, vim.Folder, "machines")[0].Destroy_Task())


def test_datastore_cluster_picks_roomiest_member(tmp_path, vsphere_env, vsphere_opts, vm_names):
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    sim = vsphere_env
    dc = find(sim.si, vim.Datacenter, "DC0")[0]
    # vcsim cannot move a datastore out of a pod again: the pod stays for the session (harmless)
    pods = find(sim.si, vim.StoragePod, "pod1")
    pod = pods[0] if pods else dc.datastoreFolder.CreateStoragePod(name="pod1")
    ds = find(sim.si, vim.Datastore, "LocalDS_0")[0]
    if ds.parent != pod:
        WaitForTask(pod.MoveIntoFolder_Task([ds]))
    d = make(tmp_path, vsphere_opts, datastore_cluster="pod1", cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    assert vm_of(sim, "vs1").datastore[0].name == "LocalDS_0"
    d.remove()
    assert vm_names() == []
    empty = find(sim.si, vim.StoragePod, "pod0") or [dc.datastoreFolder.CreateStoragePod(name="pod0")]
    with pytest.raises(UsageError, match="datastore cluster pod0 has no datastores"):
        make(tmp_path, vsphere_opts, datastore_cluster="pod0").pre_create_check()


# ---- errors: one line each, nothing left --------------------------------------------------------

def test_bad_login(tmp_path, vsphere_env, vsphere_opts, monkeypatch, vm_names):
    monkeypatch.setenv("VSPHERE_PASSWORD", "wrong")
    d = make(tmp_path, vsphere_opts)
    with pytest.raises(MachineError) as e:
        d.pre_create_check()
    assert "refused the login of 'admin'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MachineError, match="refused the login"):
        d.create()
    assert vm_names() == []


def test_no_credentials(tmp_path, vsphere_env, vsphere_opts, monkeypatch):
    monkeypatch.delenv("VSPHERE_USERNAME")
    monkeypatch.delenv("VSPHERE_PASSWORD")
    with pytest.raises(UsageError, match="no vSphere user name and password given.*VSPHERE_USERNAME"):
        make(tmp_path, vsphere_opts).pre_create_check()


def test_tls_verified_by_default(tmp_path, vsphere_env, vsphere_opts, vm_names):
    opts = dict(vsphere_opts)
    opts.pop("ca_cert")
    with pytest.raises(MachineError) as e:
        make(tmp_path, opts).pre_create_check()
    assert "cannot verify the TLS certificate of vCenter 127.0.0.1" in str(e.value)
    assert "--vsphere-insecure" in str(e.value)
    d = make(tmp_path, opts, insecure=True)
    d.pre_create_check()
    assert any("warning: TLS verification of vCenter" in line for line in d.lines)
    assert vm_names() == []


def test_missing_template(tmp_path, vsphere_env, vsphere_opts, vm_names):
    d = make(tmp_path, vsphere_opts, clone_from="no-such-template")
    with pytest.raises(UsageError) as e:
        d.pre_create_check()
    assert "--vsphere-clone-from 'no-such-template': no such template or VM" in str(e.value)
    assert TEMPLATE in str(e.value)            # says what exists
    with pytest.raises(UsageError):
        d.create()
    assert vm_names() == []


@pytest.mark.parametrize("flag,value,msg", [
    ("datacenter", "DCX", "--vsphere-datacenter 'DCX': no such datacenter"),
    ("datastore", "nope", "--vsphere-datastore 'nope': no such datastore"),
    ("network", ["nonet"], "--vsphere-network 'nonet': no such network"),
    ("folder", "nofolder", "--vsphere-folder 'nofolder': no such folder"),
    ("pool", "nopool", "--vsphere-pool 'nopool': no such resource pool"),
    ("hostsystem", "DC0_C0/nohost", "--vsphere-hostsystem 'nohost': no such host"),
])
def test_missing_placement(tmp_path, vsphere_env, vsphere_opts, vm_names, flag, value, msg):
    with pytest.raises(UsageError, match=msg.replace("(", r"\(")):
        make(tmp_path, vsphere_opts, **{flag: value}).pre_create_check()
    assert vm_names() == []


def test_invalid_power_state_is_one_line(tmp_path, vsphere_env, vsphere_opts, vm_names):
    from machine.drivers.vsphere import session

    d = make(tmp_path, vsphere_opts, cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    d.kill()
    vm = vm_of(vsphere_env, "vs1")
    with pytest.raises(MachineError) as e:       # vCenter's own InvalidPowerState, through a real task
        session.wait_task(vm.PowerOffVM_Task(), "powering off vs1", deadline_s=30)
    assert str(e.value).startswith("powering off vs1: the VM is in the wrong power state")
    assert "\n" not in str(e.value)
    d.remove()
    assert vm_names() == []


def test_datastore_full(tmp_path, vsphere_env, vsphere_opts, vm_names):
    sim = vsphere_env
    sim.set_free_space("LocalDS_0", 512 << 20)
    try:
        d = make(tmp_path, vsphere_opts, disk_size=2048)
        with pytest.raises(MachineError) as e:
            d.pre_create_check()
        assert str(e.value).startswith("datastore LocalDS_0 is full: 0.5 GiB free, 2.0 GiB needed")
        with pytest.raises(MachineError, match="is full"):
            d.create()                           # checked again right before the clone
        assert vm_names() == [] and [e["kind"] for e in d.journal] == ["ssh-key"]
    finally:
        sim.set_free_space("LocalDS_0", 200 << 30)


def test_no_guest_address_rolls_back(tmp_path, vsphere_env, vsphere_opts, vm_names):
    """A template without guest tools: no address by the deadline; remove() leaves nothing."""
    d = make(tmp_path, vsphere_opts, ip_timeout=1)
    with pytest.raises(MachineError, match="reported no IPv4 address within 1s"):
        d.create()
    assert vm_names() == ["vs1"] and d.journal.of_kind("vm")   # journaled: the core can roll back
    d.remove()
    assert vm_names() == []


def test_interrupted_clone_is_found_by_uuid(tmp_path, vsphere_env, vsphere_opts, vm_names):
    """The VM is journaled (by instance UUID) before the clone task; a lost moref is no leak."""
    d = make(tmp_path, vsphere_opts, cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    entry = d.journal.of_kind("vm")[0]
    d.journal.forget("vm", entry["id"])
    d.journal.record("vm", entry["id"], name="vs1")          # as if interrupted before the task returned
    d.config.vm_ref = ""
    d.remove()
    assert vm_names() == []


def test_vm_deleted_behind_our_back(tmp_path, vsphere_env, vsphere_opts, vm_names):
    from pyVim.task import WaitForTask

    d = make(tmp_path, vsphere_opts, cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.create()
    vm = vm_of(vsphere_env, "vs1")
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())
    d.remove()                                    # idempotent: gone is fine
    assert list(d.journal) == [] and vm_names() == []


def test_task_deadline(tmp_path, vsphere_env):
    """A task that does not finish in time is one line naming it (vcsim's tasks take ms: deadline 0,
    and the task is seen through a view that still says "running")."""
    from pyVmomi import vim

    from machine.drivers.vsphere import session

    task = vm_of(vsphere_env, "DC0_H0_VM1").ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="x"))

    class StillRunning:
        _moId = task._moId

        @property
        def info(self):
            i = task.info
            i.state = vim.TaskInfo.State.running
            return i

    with pytest.raises(MachineError, match=r"^reconfiguring: not done after 0s \(vSphere task task-"):
        session.wait_task(StillRunning(), "reconfiguring", deadline_s=0)


def test_docker_machine_record_found_by_name(tmp_path, vsphere_env, vsphere_opts, vm_names):
    """docker-machine's vmwarevsphere records hold no VM id: the VM is found by the machine's name."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    sim = vsphere_env
    tmpl = vm_of(sim, TEMPLATE)
    dc = find(sim.si, vim.Datacenter, "DC0")[0]
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=tmpl.runtime.host.parent.resourcePool),
                            powerOn=True, template=False)
    task = tmpl.CloneVM_Task(folder=dc.vmFolder, name="dm-made", spec=spec)
    WaitForTask(task)
    if task.info.result.runtime.powerState != "poweredOn":
        WaitForTask(task.info.result.PowerOnVM_Task())
    record = {"IPAddress": "10.0.0.5", "MachineName": "dm-made", "SSHUser": "docker", "SSHPort": 22,
              "StorePath": "/home/u/.docker/machine", "CPU": 2, "Memory": 2048, "DiskSize": 20480,
              "Boot2DockerURL": "", "IP": sim.host, "Port": sim.port, "Username": "", "Networks": None,
              "Datastore": "LocalDS_0", "Datacenter": "DC0", "Folder": "", "Pool": "", "HostSystem": "",
              "CfgParams": None, "CloudInit": "", "SSHPassword": "tcuser"}
    cfg = VSphereConfig.from_record(record)
    cfg.ca_cert = sim.cert_file
    mdir = tmp_path / "dm-made"
    mdir.mkdir()
    d = VSphereDriver(cfg, DriverContext(machine_name="dm-made", machine_dir=mdir, cache_dir=tmp_path,
                                         shared_dir=tmp_path, journal=Journal(), lock=lambda n: None,
                                         peer_claims=lambda: []))
    assert d.state() == State.RUNNING
    assert d.config.to_record()["SSHPassword"] == "tcuser"      # unknown keys survive
    d.remove()
    assert vm_names() == []


def _rest(sim, method, path, body=None, token=None):
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=sim.cert_file)
    h = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        h["vmware-api-session-id"] = token
    else:
        h["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(f"https://{sim.host}:{sim.port}/rest{path}", method=method, headers=h,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.ProxyHandler({})).open(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw)["value"] if raw else None


@pytest.fixture
def vmtx_item(vsphere_env):
    """A content library "machines" holding the template as a VM-template item (vcsim's vAPI REST)."""
    from pyVmomi import vim

    sim = vsphere_env
    token = _rest(sim, "POST", "/com/vmware/cis/session")
    libs = _rest(sim, "POST", "/com/vmware/content/library?~action=find", {"spec": {"name": "machines"}}, token)
    if not libs:
        ds = find(sim.si, vim.Datastore, "LocalDS_0")[0]
        lib = _rest(sim, "POST", "/com/vmware/content/local-library", {"create_spec": {
            "name": "machines", "type": "LOCAL",
            "storage_backings": [{"type": "DATASTORE", "datastore_id": ds._moId}]}}, token)
        tmpl = vm_of(sim, TEMPLATE)
        dc = find(sim.si, vim.Datacenter, "DC0")[0]
        _rest(sim, "POST", "/vcenter/vm-template/library-items", {"spec": {
            "source_vm": tmpl._moId, "name": "debian-vmtx", "library": lib,
            "placement": {"resource_pool": tmpl.runtime.host.parent.resourcePool._moId,
                          "folder": dc.vmFolder._moId}}}, token)
    return "machines", "debian-vmtx"


def test_deploy_from_content_library(tmp_path, vsphere_env, vsphere_opts, vm_names, vmtx_item):
    library, item = vmtx_item
    baseline = set(vm_names())
    # a library item is not a VM: vCenter needs to be told where it goes
    with pytest.raises(UsageError, match="cannot tell where to run the VM"):
        make(tmp_path, vsphere_opts, content_library=library, clone_from=item).pre_create_check()
    d = make(tmp_path, vsphere_opts, content_library=library, clone_from=item, cpus=2, cluster="DC0_C0",
             datastore="LocalDS_0", cfgparam=[f"SET.guest.ipAddress={IP}"])
    d.pre_create_check()
    d.create()
    vm = vm_of(vsphere_env, "vs1")
    assert d.config.vm_ref == vm._moId and d.config.ip_address == IP
    assert [e["kind"] for e in d.journal] == ["ssh-key", "vm"]
    assert vm.config.hardware.numCPU == 2 and "guestinfo.userdata" in extra(vm)
    d.remove()
    assert set(vm_names()) == baseline - {"vs1"}
    with pytest.raises(UsageError, match="no such item in content library 'machines'"):
        make(tmp_path, vsphere_opts, content_library=library, clone_from="nope", cluster="DC0_C0",
             datastore="LocalDS_0").pre_create_check()
    with pytest.raises(UsageError, match="--vsphere-content-library 'nolib': no such content library"):
        make(tmp_path, vsphere_opts, content_library="nolib", clone_from=item, cluster="DC0_C0",
             datastore="LocalDS_0").pre_create_check()
