"""boto3/botocore exceptions -> one-line MachineErrors naming the AWS error code.

`translate(action)` wraps one step ("run the instance", "import the key pair", …). The message
is `ACTION: CODE: AWS's own words (first line)`; the hint says what to do. A secret never
reaches a message: only AWS's reply and our own words are shown.
"""
from __future__ import annotations

import contextlib
import re

from ...errors import MachineError, NotFound, UsageError


class AWSError(MachineError):
    """A failure reported by (or on the way to) AWS; `code` is AWS's error code."""

    def __init__(self, message: str, hint: str | None = None, code: str = "", status: int | None = None):
        super().__init__(message, hint)
        self.code = code
        self.status = status


class AuthFailed(AWSError):
    pass


class QuotaExceeded(AWSError):
    pass


class Throttled(AWSError):
    pass


AUTH_CODES = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
              "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken", "ExpiredTokenException",
              "RequestExpired", "OptInRequired", "Blocked", "PendingVerification"}
QUOTA_CODES = {"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
               "AddressLimitExceeded", "SecurityGroupLimitExceeded", "RulesPerSecurityGroupLimitExceeded",
               "VolumeLimitExceeded", "KeyPairLimitExceeded", "ResourceLimitExceeded", "MaxIOPSLimitExceeded"}
THROTTLE_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                  "RequestThrottled", "SlowDown", "EC2ThrottledException"}
CAPACITY_CODES = {"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
                  "InsufficientCapacity", "Unsupported", "SpotMaxPriceTooLow", "InsufficientFreeAddressesInSubnet"}

AUTH_HINT = ("check the credentials boto3 finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
             "--aws-profile, ~/.aws/credentials, SSO login) or pass --amazonec2-access-key/--amazonec2-secret-key")

HINTS = {
    "UnauthorizedOperation": "the IAM identity may not do this: grant it the EC2 permission named above",
    "AccessDenied": "the IAM identity may not do this: grant it the permission named above",
    "InvalidAMIID.NotFound": "pass an image of this region with --aws-ami (ids differ per region)",
    "InvalidAMIID.Malformed": "pass an image id of the form ami-0123456789abcdef0 with --aws-ami",
    "InvalidAMIID.Unavailable": "the image is not available: pass another with --aws-ami",
    "InvalidInstanceType": "pass an instance type this region offers with --aws-instance-type",
    "InvalidKeyPair.NotFound": "pass the name of an existing key pair with --aws-keypair-name",
    "InvalidKeyPair.Duplicate": "a key pair with the machine's name exists: remove it or pick another machine name",
    "InvalidSubnetID.NotFound": "pass a subnet of this region with --aws-subnet-id",
    "InvalidVpcID.NotFound": "pass a VPC of this region with --aws-vpc-id",
    "InvalidGroup.NotFound": "pass existing security groups with --aws-security-group",
    "InvalidParameterValue": "check the --aws-* values named above",
    "InvalidZone.NotFound": "pass a zone of the region with --aws-zone (a, b, …)",
    "InsufficientInstanceCapacity": "AWS has no capacity for this type in this zone now: try another "
                                    "--aws-zone or --aws-instance-type, or retry later",
    "SpotMaxPriceTooLow": "raise --aws-spot-price or drop it (the on-demand price is the cap)",
    "IncorrectState": "the instance is in a state that does not allow this; retry when it settles",
    "DependencyViolation": "another resource still uses it; run rm again in a minute",
}


def one_line(text) -> str:
    text = re.sub(r"<[^>]+>", " ", str(text or ""))
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line[:300]
    return ""


def code_of(exc: BaseException) -> str:
    """AWS's error code of a ClientError (or of the AWSError made from one), else ''."""
    if isinstance(exc, AWSError):
        return exc.code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, AWSError):
        return exc.status
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return None


def convert(exc: BaseException, action: str) -> MachineError:
    """Map one exception to the MachineError shown to the user."""
    if isinstance(exc, MachineError):
        return exc
    from botocore import exceptions as be

    if isinstance(exc, be.ClientError):
        code = code_of(exc)
        status = status_of(exc)
        msg = one_line((exc.response.get("Error") or {}).get("Message") or "") or one_line(exc)
        line = f"{action}: {code}: {msg}" if msg else f"{action}: {code}"
        if code in AUTH_CODES:
            return AuthFailed(line, AUTH_HINT, code, status)
        if code in QUOTA_CODES:
            return QuotaExceeded(line, "raise the quota in the Service Quotas console, or remove unused "
                                       "instances and resources", code, status)
        if code in THROTTLE_CODES:
            return Throttled(line, "AWS throttled the calls; retry in a minute (--aws-retries sets the retries)",
                             code, status)
        if code.endswith(".NotFound") and code not in HINTS:
            return AWSError(line, None, code, status)
        hint = HINTS.get(code)
        if hint is None and code in CAPACITY_CODES:
            hint = HINTS["InsufficientInstanceCapacity"]
        return AWSError(line, hint, code, status)
    if isinstance(exc, (be.NoCredentialsError, be.PartialCredentialsError)):
        return UsageError(f"{action}: no AWS credentials found ({one_line(exc)})", AUTH_HINT)
    if isinstance(exc, be.ProfileNotFound):
        return UsageError(f"{action}: {one_line(exc)}", "check --aws-profile / AWS_PROFILE and ~/.aws/config")
    if isinstance(exc, (be.NoRegionError,)):
        return UsageError(f"{action}: no AWS region", "pass --aws-region")
    if isinstance(exc, (be.ReadTimeoutError, be.ConnectTimeoutError)):
        return AWSError(f"{action}: RequestTimeout: the AWS API did not answer in time ({one_line(exc)})",
                        "check the network and --aws-endpoint-url, then retry", "RequestTimeout")
    if isinstance(exc, (be.EndpointConnectionError, be.ConnectionClosedError)):
        return AWSError(f"{action}: cannot reach the AWS API ({one_line(exc)})",
                        "check the network, --aws-region and --aws-endpoint-url", "EndpointConnectionError")
    if isinstance(exc, be.WaiterError):
        return AWSError(f"{action}: {one_line(exc)}", None, "WaiterError")
    if isinstance(exc, be.BotoCoreError):
        return AWSError(f"{action}: {type(exc).__name__}: {one_line(exc)}", None, type(exc).__name__)
    return AWSError(f"{action}: {type(exc).__name__}: {one_line(exc)}", None, type(exc).__name__)


@contextlib.contextmanager
def translate(action: str):
    """Re-raise anything but KeyboardInterrupt/SystemExit as a one-line MachineError."""
    try:
        yield
    except MachineError:
        raise
    except Exception as exc:  # noqa: BLE001 - converted, with the original chained
        raise convert(exc, action) from exc


def is_missing(exc: BaseException) -> bool:
    """AWS says the resource does not exist (rm treats that as done)."""
    code = code_of(exc)
    return code.endswith(".NotFound") or code in ("InvalidInstanceID.Malformed", "InvalidGroupId.Malformed",
                                                  "InvalidAllocationID.NotFound", "InvalidAssociationID.NotFound",
                                                  "InvalidSpotInstanceRequestID.NotFound")


def is_definitive(exc: BaseException) -> bool:
    """AWS answered with a client error: the resource asked for was not created."""
    status = status_of(exc)
    return bool(code_of(exc)) and (status is None or 400 <= status < 500)


def not_found(what: str) -> NotFound:
    return NotFound(what, "it was never created or is removed")
