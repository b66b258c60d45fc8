"""SDK and keystoneauth exceptions -> one-line MachineErrors (message + what to do).

`translate(action)` wraps one step (“create server”, “authenticate”, …). The message names the
step, the HTTP status and the cloud's own words (first line only); the hint says what to do.
A password never reaches a message: only the cloud's reply and our own words are shown.
"""
from __future__ import annotations

import contextlib
import re

from ...errors import MachineError, NotFound, UsageError


class OpenStackError(MachineError):
    """A failure reported by (or on the way to) the OpenStack cloud."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint)
        self.status = status


class QuotaExceeded(OpenStackError):
    pass


class AuthFailed(OpenStackError):
    pass


class Conflict(OpenStackError):
    pass


class ActiveTimeout(OpenStackError):
    pass


AUTH_HINT = ("check --openstack-username/--openstack-password/--openstack-tenant-name and "
             "--openstack-auth-url (or OS_* variables, or the cloud in clouds.yaml)")


def one_line(text) -> str:
    text = re.sub(r"<[^>]+>", " ", str(text or ""))
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line[:300]
    return ""


def cloud_message(exc) -> str:
    """The cloud's own explanation, without the SDK's 'Client Error for url: …' wrapping."""
    details = getattr(exc, "details", None)
    if details:
        return one_line(details)
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
            for value in body.values() if isinstance(body, dict) else ():
                if isinstance(value, dict) and value.get("message"):
                    return one_line(value["message"])
        except Exception:
            pass
    return one_line(getattr(exc, "message", None) or exc)


def status_of(exc) -> int | None:
    for attr in ("status_code", "http_status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def convert(exc: BaseException, action: str) -> MachineError:
    """Map one exception to the MachineError shown to the user."""
    if isinstance(exc, MachineError):
        return exc
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    name = type(exc).__name__
    # openstacksdk wraps keystoneauth's errors (SDKException from Unauthorized, …): look inside.
    inner = exc.__cause__ or exc.__context__
    if isinstance(exc, sdk.SDKException) and not isinstance(exc, sdk.HttpException) \
            and isinstance(inner, ksa.ClientException):
        return convert(inner, action)
    if type(exc) is Exception and "required attribute" in str(exc):
        # keystoneauth: "password is a required attribute"
        return UsageError(f"{action}: no OpenStack {one_line(exc).split(' is ')[0]} available",
                          "pass --openstack-password, set OS_PASSWORD, or use --openstack-cloud NAME")
    if isinstance(exc, ksa.MissingRequiredOptions) or isinstance(exc, ksa.MissingAuthPlugin):
        return UsageError(f"{action}: incomplete OpenStack credentials ({one_line(exc)})",
                          "pass --openstack-auth-url, --openstack-username, --openstack-password and "
                          "--openstack-tenant-name, or set OS_* variables, or --openstack-cloud NAME")
    if isinstance(exc, sdk.ConfigException):
        return UsageError(f"{action}: {one_line(exc)}",
                          "check --openstack-cloud / OS_CLOUD and clouds.yaml")
    if isinstance(exc, (ksa.SSLError,)):
        return OpenStackError(f"{action}: TLS verification failed ({one_line(exc)})",
                              "pass --openstack-cacert FILE (or --openstack-insecure for a test cloud)")
    if isinstance(exc, (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.UnknownConnectionError)):
        return OpenStackError(f"{action}: cannot reach the OpenStack API ({one_line(exc)})",
                              "check --openstack-auth-url and that the endpoint is reachable")
    if isinstance(exc, (ksa.EndpointNotFound, sdk.EndpointNotFound, ksa.EmptyCatalog)):
        return OpenStackError(f"{action}: the cloud's catalog has no such endpoint ({one_line(exc)})",
                              "check --openstack-region and --openstack-endpoint-type")
    if isinstance(exc, ksa.DiscoveryFailure):
        return OpenStackError(f"{action}: cannot discover the API versions ({one_line(exc)})",
                              "check --openstack-auth-url (it usually ends in /v3)")
    if isinstance(exc, sdk.ResourceTimeout):
        return OpenStackError(f"{action}: timed out ({one_line(exc)})", None)
    if isinstance(exc, sdk.DuplicateResource):
        return UsageError(f"{action}: {one_line(exc)}", "use the ID instead of the name")

    status = status_of(exc)
    if isinstance(exc, ksa.Unauthorized) or status == 401:
        return AuthFailed(f"{action}: OpenStack refused the credentials (401)", AUTH_HINT, 401)
    if isinstance(exc, (ksa.HttpError, sdk.HttpException)) or status:
        msg = cloud_message(exc)
        if status == 403 or status == 413:
            if "quota" in msg.lower() or status == 413:
                return QuotaExceeded(f"{action}: quota exceeded ({msg})",
                                     "remove unused servers/resources or ask the cloud's admins for more quota",
                                     status)
            return OpenStackError(f"{action}: forbidden (403): {msg}",
                                  "the user's role may not do this in this project", status)
        if status == 404:
            return NotFound(f"{action}: not found (404): {msg}")
        if status == 409:
            return Conflict(f"{action}: conflict (409): {msg}", None, status)
        if status == 400:
            return OpenStackError(f"{action}: the cloud rejected the request (400): {msg}",
                                  "check the flavor, image, network and other --openstack-* values", status)
        return OpenStackError(f"{action}: OpenStack error ({status}): {msg}",
                              "retry later; if it persists, the cloud's admins can trace the request", status)
    if isinstance(exc, sdk.SDKException):
        return OpenStackError(f"{action}: {one_line(exc)}")
    return OpenStackError(f"{action}: {name}: {one_line(exc)}")


@contextlib.contextmanager
def translate(action: str):
    """Re-raise anything but KeyboardInterrupt/SystemExit as a one-line MachineError."""
    try:
        yield
    except MachineError:
        raise
    except Exception as exc:  # noqa: BLE001 - converted, with the original chained
        raise convert(exc, action) from exc


def is_definitive_http_error(exc: BaseException) -> bool:
    """The cloud answered 4xx: the resource was not created (no need to look for it later)."""
    status = status_of(exc)
    if isinstance(exc, MachineError) and isinstance(getattr(exc, "status", None), int):
        status = exc.status
    if status is None and isinstance(exc.__cause__, BaseException):
        status = status_of(exc.__cause__)
    return status is not None and 400 <= status < 500
