"""Errors the CLI shows as one line (message + what to do), never as a traceback."""
from __future__ import annotations


class MachineError(Exception):
    """A user-facing failure. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UsageError(MachineError):
    exit_code = 2


class NotFound(MachineError):
    pass


class HostKeyMismatch(MachineError):
    pass


class StepFailed(MachineError):
    """A create/provision step failed; `step` names it so `provision` can resume."""

    def __init__(self, step: str, message: str, hint: str | None = None):
        super().__init__(f"{step}: {message}", hint)
        self.step = step
