"""google-api-core / google-auth exceptions -> one-line MachineErrors that say what to do."""
from __future__ import annotations

import contextlib

from ...errors import MachineError, NotFound

CRED_HINT = ("set GOOGLE_APPLICATION_CREDENTIALS to a service account key, run `gcloud auth application-default "
             "login`, or run where a metadata server or workload identity provides credentials")


class GoogleError(MachineError):
    def __init__(self, message: str, hint: str | None = None, reason: str = "", status: int = 0):
        super().__init__(message, hint)
        self.reason, self.status = reason, status


class AuthFailed(GoogleError):
    pass


class QuotaExceeded(GoogleError):
    pass


def first_line(text) -> str:
    text = str(text or "").strip()
    return text.splitlines()[0].strip() if text else ""


def reason_of(exc) -> str:
    r = getattr(exc, "reason", None)
    if r:
        return str(r)
    for e in getattr(exc, "errors", None) or []:
        if isinstance(e, dict) and e.get("reason"):
            return str(e["reason"])
    return ""


def is_not_found(exc) -> bool:
    return getattr(exc, "code", None) == 404 or type(exc).__name__ == "NotFound"


def convert(exc: BaseException, action: str) -> MachineError:
    if isinstance(exc, MachineError):
        return exc
    name = type(exc).__name__
    if name in ("DefaultCredentialsError",):
        return AuthFailed(f"no Google credentials ({action}): {first_line(exc)}", CRED_HINT)
    if name in ("RefreshError", "TransportError") and "google.auth" in type(exc).__module__:
        return AuthFailed(f"Google did not accept the credentials ({action}): {first_line(exc)}", CRED_HINT)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and hasattr(exc, "message"):
        msg = first_line(getattr(exc, "message", "") or exc)
        reason = reason_of(exc)
        text = f"cannot {action}: {msg}"
        if code == 401:
            return AuthFailed(f"Google did not accept the credentials ({action}): {msg}", CRED_HINT, reason, code)
        if reason in ("quotaExceeded", "QUOTA_EXCEEDED") or "quota" in msg.lower():
            return QuotaExceeded(text, "free capacity in the region, choose another zone, or request more quota",
                                 reason, code)
        if code == 403:
            return AuthFailed(text, "the credentials lack a role on the project (Compute Instance Admin and "
                                    "Security Admin, or Editor)", reason, code)
        if code == 404:
            return NotFound(text, "check the project, zone and names")
        if code == 429:
            return GoogleError(text, "the Compute API is rate limiting this project; wait and retry", reason, code)
        return GoogleError(text, None, reason, code)
    if "requests" in type(exc).__module__ or name in ("ConnectionError", "ServiceUnavailable"):
        return GoogleError(f"cannot reach the Compute API to {action}: {first_line(exc)}",
                           "check the network and --google-endpoint")
    return MachineError(f"cannot {action}: {name}: {first_line(exc)}")


@contextlib.contextmanager
def translate(action: str):
    try:
        yield
    except MachineError:
        raise
    except Exception as exc:
        raise convert(exc, action) from exc
