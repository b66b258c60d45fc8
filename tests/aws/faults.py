"""Fault injection for the aws driver: botocore `before-call` hooks raising real AWS errors.

    rec = CallRecorder(); client.HOOKS.append(("before-call.ec2", rec))   # what a create calls
    inj = Inject("RunInstances", 1, "InstanceLimitExceeded")               # the 2nd RunInstances fails
    client.HOOKS.append(("before-call.ec2", inj))

Errors are raised as botocore raises them (ClientError with AWS's code, message and HTTP
status; ReadTimeoutError for a timeout), before the request leaves, once.
"""
from __future__ import annotations

#: code -> (HTTP status AWS answers with, AWS's message)
ERRORS = {
    "InstanceLimitExceeded": (400, "You have requested more instances (21) than your current instance limit of 20 "
                                   "allows for the specified instance type."),
    "RequestLimitExceeded": (503, "Request limit exceeded."),
    "UnauthorizedOperation": (403, "You are not authorized to perform this operation."),
    "InsufficientInstanceCapacity": (500, "We currently do not have sufficient t3.micro capacity in the "
                                          "Availability Zone you requested (us-east-1a)."),
    "AuthFailure": (401, "AWS was not able to validate the provided access credentials"),
}
TIMEOUT = "timeout"


def client_error(code: str, op: str):
    from botocore.exceptions import ClientError

    status, message = ERRORS[code]
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"}}, op)


class CallRecorder:
    """before-call.ec2 handler listing the operations called, in order."""

    def __init__(self):
        self.calls: list[str] = []
        self.on = True

    def __call__(self, model=None, **kw):
        if self.on:
            self.calls.append(model.name)

    def occurrences(self) -> list[tuple[str, int]]:
        """(operation, k): the k-th call (0-based) of each operation, in call order."""
        seen: dict[str, int] = {}
        out = []
        for op in self.calls:
            out.append((op, seen.get(op, 0)))
            seen[op] = seen.get(op, 0) + 1
        return out


class Inject:
    """Fail the k-th call of `op` (once) with AWS error `code` (or a read timeout)."""

    def __init__(self, op: str, k: int, code: str):
        self.op, self.k, self.code = op, k, code
        self.seen = 0
        self.fired = False

    def __call__(self, model=None, **kw):
        if model.name != self.op or self.fired:
            return None
        if self.seen < self.k:
            self.seen += 1
            return None
        self.fired = True
        if self.code == TIMEOUT:
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url="http://127.0.0.1/ (injected)")
        raise client_error(self.code, self.op)
