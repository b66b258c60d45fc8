"""Where a clone goes: datacenter, compute (cluster or host), resource pool, datastore (or datastore
cluster), folder, networks and the template. Each lookup fails with one line naming the flag."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import UsageError


@dataclass
class Placement:
    datacenter: object
    template: object
    pool: object
    datastore: object
    folder: object
    host: object | None = None
    networks: list = field(default_factory=list)


def _children(si, root, vimtype) -> list:
    view = si.content.viewManager.CreateContainerView(root, [vimtype], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def _names(objs, limit: int = 6) -> str:
    names = sorted({o.name for o in objs})
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def _by_path(si, base, path: str):
    """An inventory object by a path relative to `base` (or absolute from the root folder)."""
    idx = si.content.searchIndex
    if path.startswith("/"):
        return idx.FindByInventoryPath(path.strip("/"))
    obj = base
    for part in [p for p in path.split("/") if p]:
        obj = idx.FindChild(obj, part)
        if obj is None:
            return None
    return obj


def find_one(si, root, vimtype, name: str, flag: str, what: str):
    """By name anywhere under root, or by path when it has a slash; UsageError listing what exists."""
    from pyVmomi import vim  # noqa: F401

    if "/" in name:
        obj = _by_path(si, root, name)
        if obj is not None and isinstance(obj, vimtype):
            return obj
        found = []
    else:
        found = [o for o in _children(si, root, vimtype) if o.name == name]
        if len(found) == 1:
            return found[0]
    if len(found) > 1:
        raise UsageError(f"{flag} {name!r}: {len(found)} {what}s have that name", "give its inventory path")
    raise UsageError(f"{flag} {name!r}: no such {what}",
                     f"{what}s here: {_names(_children(si, root, vimtype))}")


def datacenter(si, name: str):
    from pyVmomi import vim

    root = si.content.rootFolder
    if name:
        return find_one(si, root, vim.Datacenter, name, "--vsphere-datacenter", "datacenter")
    dcs = _children(si, root, vim.Datacenter)
    if len(dcs) == 1:
        return dcs[0]
    raise UsageError("this vCenter has several datacenters" if dcs else "this vCenter has no datacenter",
                     f"pass --vsphere-datacenter (one of: {_names(dcs)})")


def template(si, dc, config):
    """The VM or template to clone (--vsphere-clone-from); None for a content-library item."""
    from pyVmomi import vim

    if config.content_library:
        return None
    if not config.clone_from:
        raise UsageError("nothing to clone", "pass --vsphere-clone-from TEMPLATE (a template or VM)")
    return find_one(si, dc.vmFolder, vim.VirtualMachine, config.clone_from, "--vsphere-clone-from",
                    "template or VM")


def compute(si, dc, config, tmpl):
    """(resource pool, host or None) from --vsphere-pool / --vsphere-cluster / --vsphere-hostsystem."""
    from pyVmomi import vim

    host = None
    cr = None
    hs = config.hostsystem
    cluster = config.cluster
    if hs and "/" in hs and not hs.startswith("/"):
        # docker-machine's "<cluster>/*" or "<cluster>/<host>"
        cluster, _, hs = hs.partition("/")
        hs = "" if hs == "*" else hs
    if cluster:
        cr = find_one(si, dc.hostFolder, vim.ClusterComputeResource, cluster, "--vsphere-cluster", "cluster")
    if hs:
        host = find_one(si, cr or dc.hostFolder, vim.HostSystem, hs, "--vsphere-hostsystem", "host")
        cr = cr or host.parent
    if config.pool:
        pool = find_one(si, cr or dc.hostFolder, vim.ResourcePool, config.pool, "--vsphere-pool", "resource pool")
    elif cr is not None:
        pool = cr.resourcePool
    else:
        src_host = tmpl.runtime.host if tmpl is not None else None
        if src_host is None:
            raise UsageError("cannot tell where to run the VM",
                             "pass --vsphere-cluster, --vsphere-hostsystem or --vsphere-pool")
        pool = src_host.parent.resourcePool
    return pool, host


def datastore(si, dc, config, tmpl):
    """--vsphere-datastore, else the datastore cluster's roomiest member, else the template's."""
    from pyVmomi import vim

    if config.datastore:
        return find_one(si, dc.datastoreFolder, vim.Datastore, config.datastore, "--vsphere-datastore", "datastore")
    if config.datastore_cluster:
        pod = find_one(si, dc.datastoreFolder, vim.StoragePod, config.datastore_cluster,
                       "--vsphere-datastore-cluster", "datastore cluster")
        members = [d for d in pod.childEntity if isinstance(d, vim.Datastore)]
        if not members:
            raise UsageError(f"datastore cluster {pod.name} has no datastores")
        return max(members, key=lambda d: d.summary.freeSpace or 0)
    if tmpl is not None and tmpl.datastore:
        return tmpl.datastore[0]
    raise UsageError("cannot tell which datastore the VM goes to", "pass --vsphere-datastore")


def folder(si, dc, config):
    from pyVmomi import vim

    if not config.folder:
        return dc.vmFolder
    obj = _by_path(si, dc.vmFolder, config.folder)
    if obj is None or not isinstance(obj, vim.Folder):
        subs = [f for f in _children(si, dc.vmFolder, vim.Folder)]
        raise UsageError(f"--vsphere-folder {config.folder!r}: no such folder in {dc.name}",
                         f"folders here: {_names(subs)}; it must exist")
    return obj


def networks(si, dc, config) -> list:
    from pyVmomi import vim

    return [find_one(si, dc.networkFolder, vim.Network, n, "--vsphere-network", "network") for n in config.network]


def resolve(si, config) -> Placement:
    dc = datacenter(si, config.datacenter)
    tmpl = template(si, dc, config)
    pool, host = compute(si, dc, config, tmpl)
    return Placement(datacenter=dc, template=tmpl, pool=pool, host=host,
                     datastore=datastore(si, dc, config, tmpl), folder=folder(si, dc, config),
                     networks=networks(si, dc, config))
