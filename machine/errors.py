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


def error_message(e: BaseException) -> str:
    """The error's text: ours (message), click's (format_message) or any exception's str()."""
    return str(getattr(e, "message", None) or (e.format_message() if hasattr(e, "format_message") else e))


def error_line(e: BaseException, *, prefix: str = "", debug: bool = False) -> str:
    """The one line the user sees for `e` (the full CLI and the light path print the same):
    "Error: MESSAGE: HINT", and when the error carries a command's output, a pointer to
    --debug (which prints that output itself)."""
    first, _, details = error_message(e).partition("\n")
    hint = getattr(e, "hint", None)
    line = first + (f": {hint}" if hint else "")
    if details and not debug:
        line += " (run with --debug for the command's output)"
    return f"Error: {prefix}{line}"


class UsageError(MachineError):
    # docker-machine exits 1 on every error; scripts and GitLab Runner test for non-zero only
    exit_code = 1


class NotFound(MachineError):
    pass


def no_such_machine(name: str) -> NotFound:
    """docker-machine's wording (scripts grep for it), then ours."""
    return NotFound(f'Docker machine "{name}" does not exist',
                    'use "machine ls" to list machines, "machine create" to add one')


def machine_exists(name: str) -> UsageError:
    return UsageError(f'Docker machine "{name}" already exists',
                      f"pick another name or remove it first: machine rm {name}")


class HostKeyMismatch(MachineError):
    pass


class StepFailed(MachineError):
    """A create/provision step failed; `step` names it so `provision` can resume."""

    def __init__(self, step: str, message: str, hint: str | None = None):
        super().__init__(f"{step}: {message}", hint)
        self.step = step
