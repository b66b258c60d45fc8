"""The one door to VirtualBox: `VBoxManage`, run as an argv list (no shell), with a deadline.

Every failure becomes one MachineError line: the command, VBoxManage's own first error line
(its "VBoxManage: error: …" lines, with the VERR_/E_ codes users search for), and what to do.
A session lock held by VirtualBox's own processes for a moment is retried a few times.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from ...errors import MachineError

DEFAULT_TIMEOUT = 120.0
LOCK_RETRIES = 5
INSTALL_HINT = "install VirtualBox (https://www.virtualbox.org/wiki/Downloads) and make sure VBoxManage is on PATH"


@dataclass
class Result:
    argv: list
    code: int
    stdout: str
    stderr: str


class VBoxError(MachineError):
    """VBoxManage ran and failed; `code`, `stderr` and `detail` (its first error line) kept for callers."""

    def __init__(self, message: str, hint: str | None = None, *, code: int = 1, stderr: str = "",
                 detail: str = ""):
        super().__init__(message, hint)
        self.code, self.stderr, self.detail = code, stderr, detail


def find_vboxmanage() -> str:
    """The VBoxManage program: $VBOX_MSI_INSTALL_PATH / $VBOX_INSTALL_PATH (Windows installers), then PATH."""
    for var in ("VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"):
        d = os.environ.get(var)
        if d:
            for name in ("VBoxManage.exe", "VBoxManage"):
                p = os.path.join(d, name)
                if os.path.isfile(p) and os.access(p, os.X_OK):
                    return p
    for name in ("VBoxManage", "vboxmanage"):
        p = shutil.which(name)
        if p:
            return p
    raise MachineError("VBoxManage not found: VirtualBox is not installed (or not on PATH)", INSTALL_HINT)


def first_error(stderr: str) -> str:
    """The line of VBoxManage's stderr that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("VBoxManage: error:") and "Details: code" not in ln and "Context:" not in ln:
            return ln[len("VBoxManage: error:"):].strip()
    for ln in lines:
        if not ln.startswith(("Progress state", "0%", "VBoxManage: info")):
            return ln.removeprefix("VBoxManage: error:").strip()
    return ""


def _locked(stderr: str) -> bool:
    s = stderr.lower()
    return "is already locked" in s or "vbox_e_invalid_session_state" in s or "object is locked" in s


class Runner:
    """Runs VBoxManage; `run` returns stdout or raises VBoxError / MachineError (one line)."""

    def __init__(self, program: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 lock_retry_delay: float = 0.5):
        self._program = program
        self.timeout = timeout
        self.lock_retry_delay = lock_retry_delay

    @property
    def program(self) -> str:
        if self._program is None:
            self._program = find_vboxmanage()
        return self._program

    def run(self, *args: str, timeout: float | None = None, check: bool = True) -> str:
        return self.result(*args, timeout=timeout, check=check).stdout

    def result(self, *args: str, timeout: float | None = None, check: bool = True) -> Result:
        argv = [self.program, *[str(a) for a in args]]
        deadline = self.timeout if timeout is None else timeout
        for attempt in range(LOCK_RETRIES + 1):
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=deadline,
                                   stdin=subprocess.DEVNULL, errors="replace")
            except FileNotFoundError:
                raise MachineError(f"VBoxManage not found at {self.program}", INSTALL_HINT) from None
            except PermissionError:
                raise MachineError(f"VBoxManage at {self.program} cannot be run (permission denied)",
                                   INSTALL_HINT) from None
            except subprocess.TimeoutExpired:
                raise MachineError(f"VBoxManage {args[0] if args else ''} did not finish in {deadline:.0f}s",
                                   "VirtualBox may be hung: check `VBoxManage list runningvms`, "
                                   "or restart VirtualBox's VBoxSVC") from None
            res = Result(argv, p.returncode, p.stdout, p.stderr)
            if p.returncode == 0 or not check:
                return res
            if _locked(p.stderr) and attempt < LOCK_RETRIES:
                time.sleep(self.lock_retry_delay * (attempt + 1))
                continue
            detail = first_error(p.stderr) or f"exit status {p.returncode}"
            raise VBoxError(f"VBoxManage {' '.join(str(a) for a in args[:2])} failed: {detail}",
                            code=p.returncode, stderr=p.stderr, detail=detail)
        raise AssertionError("unreachable")

    def version(self) -> str:
        return self.run("--version", timeout=30).strip()
