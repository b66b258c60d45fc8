"""Azure SDK exceptions -> one-line MachineErrors that say what failed and what to do."""
from __future__ import annotations

import contextlib

from ...errors import MachineError, NotFound, UsageError

CRED_HINT = ("sign in with `az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, use a managed "
             "or workload identity, or pass --azure-client-id/--azure-tenant-id/--azure-client-secret")


class AzureError(MachineError):
    """A failure Azure reported; `code` is ARM's error code."""

    def __init__(self, message: str, hint: str | None = None, code: str = "", status: int = 0):
        super().__init__(message, hint)
        self.code, self.status = code, status


class AuthFailed(AzureError):
    pass


class QuotaExceeded(AzureError):
    pass


def first_line(text) -> str:
    text = str(text or "").strip()
    return text.splitlines()[0].strip() if text else ""


def chain_detail(exc) -> str:
    """The telling line of a credential chain's failure (which credential said what), else its first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines[1:]:
        if "Token request error" in ln or "AADSTS" in ln or "invalid_client" in ln:
            return ln
    return lines[0] if lines else ""


def error_code(exc) -> str:
    err = getattr(exc, "error", None)
    return str(getattr(err, "code", "") or "")


def error_message(exc) -> str:
    err = getattr(exc, "error", None)
    msg = getattr(err, "message", None) or getattr(exc, "message", None) or str(exc)
    return first_line(msg)


def is_not_found(exc) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", None) == 404


def convert(exc: BaseException, action: str) -> MachineError:
    """The MachineError a user sees for an exception raised while doing `action`."""
    if isinstance(exc, MachineError):
        return exc
    try:
        from azure.core import exceptions as ac
    except ImportError:  # pragma: no cover - the SDK raised it, so it is there
        return MachineError(f"cannot {action}: {exc}")
    if isinstance(exc, ac.ClientAuthenticationError) or type(exc).__name__ == "CredentialUnavailableError" \
            or getattr(exc, "status_code", None) == 401:
        detail = error_message(exc) if getattr(exc, "status_code", None) else chain_detail(exc)
        return AuthFailed(f"Azure did not accept the credentials ({action}): {detail}", CRED_HINT,
                          code=error_code(exc), status=401)
    if isinstance(exc, ac.ServiceRequestError):
        return AzureError(f"cannot reach Azure to {action}: {first_line(exc)}",
                          "check the network, --azure-endpoint and --azure-ca-bundle")
    if isinstance(exc, ac.HttpResponseError):
        code, status = error_code(exc), exc.status_code or 0
        msg = error_message(exc)
        text = f"cannot {action}: {code + ': ' if code else ''}{msg}"
        if "quota" in msg.lower() or code in ("QuotaExceeded", "PublicIPCountLimitReached"):
            return QuotaExceeded(text, "free capacity in the region or request a quota increase", code, status)
        if status == 404:
            return NotFound(text, "check the name, the resource group and the subscription")
        if status == 429:
            return AzureError(text, "Azure is throttling this subscription; wait a minute and retry", code, status)
        if status == 403:
            return AuthFailed(text, "the identity lacks a role on the subscription or resource group "
                                    "(Contributor is enough)", code, status)
        return AzureError(text, None, code, status)
    if isinstance(exc, ac.AzureError):
        return AzureError(f"cannot {action}: {first_line(exc)}")
    return MachineError(f"cannot {action}: {type(exc).__name__}: {first_line(exc)}")


@contextlib.contextmanager
def translate(action: str):
    """Re-raise SDK exceptions as one-line MachineErrors (Ctrl-C and MachineErrors pass through)."""
    try:
        yield
    except MachineError:
        raise
    except Exception as exc:
        raise convert(exc, action) from exc


__all__ = ["AzureError", "AuthFailed", "QuotaExceeded", "NotFound", "UsageError", "convert", "translate",
           "is_not_found", "error_code"]
