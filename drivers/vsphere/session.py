"""One logged-in vSphere session (pyVmomi), its errors as one line, and tasks waited with a deadline.

pyVmomi is imported here, inside functions only: `machine ls` of other drivers never pays for it.
Credentials typed as flags come from the driver's config (the core keeps the password out of
config.json); VSPHERE_USERNAME / VSPHERE_PASSWORD from the environment are read here, at use,
and never stored.
"""
from __future__ import annotations

import os
import socket
import ssl
import time
from contextlib import contextmanager
from typing import Callable

from ...errors import MachineError, UsageError

ENV_USER = "VSPHERE_USERNAME"
ENV_PASSWORD = "VSPHERE_PASSWORD"


def credentials(config) -> tuple[str, str]:
    """(user, password): typed values first, else the environment; UsageError when missing."""
    user = config.username or os.environ.get(ENV_USER, "")
    password = config.password or os.environ.get(ENV_PASSWORD, "")
    if not user or not password:
        missing = " and ".join(w for w, v in (("user name", user), ("password", password)) if not v)
        raise UsageError(f"no vSphere {missing} given",
                         f"set {ENV_USER}/{ENV_PASSWORD} or pass --vsphere-username/--vsphere-password")
    return user, password


def ssl_context(config) -> ssl.SSLContext:
    """Verification on by default; --vsphere-ca-cert trusts a CA file; --vsphere-insecure skips it."""
    if config.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if config.ca_cert:
        path = os.path.expanduser(config.ca_cert)
        if not os.path.isfile(path):
            raise UsageError(f"--vsphere-ca-cert {config.ca_cert}: no such file", "give the PEM file of vCenter's CA")
        try:
            return ssl.create_default_context(cafile=path)
        except (ssl.SSLError, ValueError) as e:
            raise UsageError(f"--vsphere-ca-cert {config.ca_cert} is not a PEM certificate ({e})") from None
    return ssl.create_default_context()


def _endpoint(config) -> tuple[str, int]:
    host = config.vcenter.strip()
    if host.startswith(("https://", "http://")):
        from urllib.parse import urlparse

        u = urlparse(host)
        return u.hostname or "", u.port or int(config.vcenter_port or 443)
    return host, int(config.vcenter_port or 443)


def connect(config, report: Callable[[str], None] = lambda s: None):
    """A logged-in ServiceInstance; every failure is one MachineError line."""
    from pyVim.connect import SmartConnect
    from pyVmomi import vim

    host, port = _endpoint(config)
    if not host:
        raise UsageError("no vCenter given", "pass --vsphere-vcenter HOST (or set VSPHERE_VCENTER)")
    user, password = credentials(config)
    ctx = ssl_context(config)
    where = f"vCenter {host}:{port}"
    try:
        return SmartConnect(host=host, port=port, user=user, pwd=password, sslContext=ctx,
                            disableSslCertValidation=bool(config.insecure),
                            httpConnectionTimeout=int(config.api_timeout or 60))
    except vim.fault.InvalidLogin:
        raise MachineError(f"{where} refused the login of {user!r}",
                           f"check the user name and password (--vsphere-username/--vsphere-password or "
                           f"{ENV_USER}/{ENV_PASSWORD})") from None
    except ssl.SSLCertVerificationError as e:
        raise MachineError(f"cannot verify the TLS certificate of {where} ({e.verify_message or e.reason})",
                           "pass --vsphere-ca-cert FILE with vCenter's CA, or --vsphere-insecure to skip "
                           "verification") from None
    except ssl.SSLError as e:
        raise MachineError(f"TLS with {where} failed ({e.reason or e})") from None
    except (socket.timeout, TimeoutError):
        raise MachineError(f"{where} did not answer in {config.api_timeout}s",
                           "check --vsphere-vcenter and --vsphere-vcenter-port") from None
    except (ConnectionError, socket.gaierror, OSError) as e:
        raise MachineError(f"cannot reach {where}: {getattr(e, 'strerror', None) or e}",
                           "check --vsphere-vcenter and --vsphere-vcenter-port") from None
    except vim.fault.VimFault as e:
        raise MachineError(f"{where}: {fault_text(e)}") from None


def disconnect(si) -> None:
    try:
        from pyVim.connect import Disconnect

        Disconnect(si)
    except Exception:  # a session that is already gone is fine
        pass


@contextmanager
def session(config, report: Callable[[str], None] = lambda s: None):
    si = connect(config, report)
    try:
        yield si
    finally:
        disconnect(si)


def fault_text(e: BaseException) -> str:
    """A vSphere fault as one line: its message, else its type."""
    msg = getattr(e, "msg", None) or ""
    if not msg:
        fm = getattr(e, "faultMessage", None) or []
        msg = "; ".join(getattr(m, "message", "") for m in fm if getattr(m, "message", ""))
    name = type(e).__name__.rsplit(".", 1)[-1]
    msg = " ".join(str(msg).split())
    return f"{msg} ({name})" if msg else name


def translate(e: BaseException, what: str) -> MachineError:
    """A fault raised by an API call or a task, as the one line a user reads."""
    from pyVmomi import vim, vmodl

    if isinstance(e, MachineError):
        return e
    full = tuple(t for t in (getattr(vim.fault, n, None) for n in ("NoDiskSpace", "InsufficientDiskSpace")) if t)
    if isinstance(e, full) or "insufficient disk space" in str(getattr(e, "msg", "")).lower():
        ds = getattr(e, "datastore", "") or ""
        return MachineError(f"{what}: datastore {ds + ' ' if ds else ''}is full ({fault_text(e)})",
                            "free space on it or pass another --vsphere-datastore")
    if isinstance(e, vim.fault.InvalidPowerState):
        return MachineError(f"{what}: the VM is in the wrong power state ({fault_text(e)})")
    if isinstance(e, vim.fault.NoPermission):
        return MachineError(f"{what}: permission denied ({fault_text(e)})",
                            "the vSphere user needs the privilege named above")
    if isinstance(e, vim.fault.DuplicateName):
        return MachineError(f"{what}: a VM of that name already exists ({fault_text(e)})",
                            "pick another machine name or --vsphere-folder")
    if isinstance(e, vmodl.fault.ManagedObjectNotFound):
        return MachineError(f"{what}: the object is gone from vCenter ({fault_text(e)})")
    if isinstance(e, (vim.fault.VimFault, vmodl.MethodFault)):
        return MachineError(f"{what}: {fault_text(e)}")
    if isinstance(e, (ConnectionError, OSError)):
        return MachineError(f"{what}: connection to vCenter lost ({e})", "retry")
    return MachineError(f"{what}: {type(e).__name__}: {e}")


class _Info:
    """The task fields we read, fetched one by one when the whole TaskInfo cannot be read (vcsim
    gives file tasks the FileManager as entity, which pyVmomi refuses to deserialise)."""

    def __init__(self, task):
        from pyVmomi import vmodl

        pc = None
        paths = ["info.state", "info.error", "info.progress", "info.result", "info.cancelable"]
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(task), pathSet=paths)])
        if pc is None:
            from pyVmomi import vim

            pc = vim.ServiceInstance("ServiceInstance", task._stub).content.propertyCollector
        values = {}
        for obj in pc.RetrieveContents([spec]) or []:
            for prop in obj.propSet:
                values[prop.name] = prop.val
        self.state = values.get("info.state")
        self.error = values.get("info.error")
        self.progress = values.get("info.progress")
        self.result = values.get("info.result")
        self.cancelable = values.get("info.cancelable")


def _task_info(task):
    try:
        return task.info
    except TypeError:
        return _Info(task)


def wait_task(task, what: str, *, deadline_s: float, report: Callable[[str], None] = lambda s: None,
              poll_s: float = 0.2):
    """Wait for a vSphere task: its result, or a MachineError naming `what` (fault or deadline)."""
    from pyVmomi import vim

    end = time.monotonic() + deadline_s
    shown = -1
    delay = min(poll_s, 0.05)
    while True:
        info = _task_info(task)
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise translate(info.error, what)
        pct = info.progress
        if pct is not None and pct >= shown + 25:
            shown = pct
            report(f"{what}: {pct}%")
        if time.monotonic() > end:
            try:
                if info.cancelable:
                    task.CancelTask()
            except Exception:
                pass
            raise MachineError(f"{what}: not done after {deadline_s:.0f}s (vSphere task {task._moId})",
                               "vCenter may be overloaded; raise --vsphere-task-timeout or retry")
        time.sleep(delay)
        delay = min(delay * 2, poll_s * 5)
