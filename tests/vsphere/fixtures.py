"""pytest fixtures around vcsim; import them into a test module:

    from vsphere.fixtures import vcsim, vsphere_env, vsphere_opts, vm_names  # noqa: F401
"""
from __future__ import annotations

import sys

import pytest

from .vcsim_harness import TEMPLATE, Vcsim, find, make_template, unavailable

USER, PASSWORD = "admin", "s3cret"


@pytest.fixture(scope="session")
def vcsim():
    reason = unavailable()
    if reason:
        pytest.skip(f"vcsim unavailable: {reason}")
    sim = Vcsim.start(user=USER, password=PASSWORD)
    try:
        si = sim.connect()
        make_template(si)
        sim.baseline = {v.name for v in _vms(si)}
        sim.si = si
        yield sim
    finally:
        sim.stop()


def _vms(si):
    from pyVmomi import vim

    return find(si, vim.VirtualMachine)


@pytest.fixture
def vm_names(vcsim):
    """Names of the VMs vcsim holds beyond its own inventory (what tests made and left)."""
    def names():
        return sorted({v.name for v in _vms(vcsim.si)} - vcsim.baseline)
    return names


@pytest.fixture
def vsphere_env(monkeypatch, vcsim):
    """Credentials from the environment, as most users give them."""
    monkeypatch.setenv("VSPHERE_USERNAME", USER)
    monkeypatch.setenv("VSPHERE_PASSWORD", PASSWORD)
    for var in ("VSPHERE_VCENTER", "VSPHERE_INSECURE", "VSPHERE_CA_CERT", "VSPHERE_NETWORK"):
        monkeypatch.delenv(var, raising=False)
    return vcsim


@pytest.fixture
def vsphere_opts(vcsim):
    """Driver options (by field name) that reach vcsim with TLS verified against its certificate."""
    return {"vcenter": vcsim.host, "vcenter_port": vcsim.port, "ca_cert": vcsim.cert_file,
            "clone_from": TEMPLATE, "ip_timeout": 5, "disk_size": 2048, "memory": 512, "cpus": 1}
