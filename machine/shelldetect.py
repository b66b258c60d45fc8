"""Which shell runs us: shellingham's answer, read from /proc without importing it on Linux.

`machine env` with no --shell asks this in every `eval $(machine env)`. shellingham imports
its `ps` fallback (and with it subprocess) even where /proc answers, which costs a tenth of
a bare interpreter's start-up. On Linux this module walks /proc exactly as shellingham
1.5 does (same parents, same rules for login shells, emulators and interpreter-run shells);
anywhere else it asks shellingham. tests/unit/test_shelldetect.py runs both under real shells.
"""
from __future__ import annotations

import os
import re
import sys

# shellingham._core.SHELL_NAMES
SHELL_NAMES = frozenset({"sh", "bash", "dash", "ash", "csh", "tcsh", "ksh", "zsh", "fish",
                         "cmd", "powershell", "pwsh", "elvish", "xonsh", "nu"})
_EMULATOR = re.compile(r"qemu-(alpha|armeb|arm|m68k|cris|i386|x86_64|microblaze|mips|mipsel|mips64|mips64el"
                       r"|mipsn32|mipsn32el|nios2|ppc64|ppc|sh4eb|sh4|sparc|sparc32plus|sparc64)")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_STAT_PARTS = re.compile(r"\(.+\)|\S+")
MAX_DEPTH = 10


class DetectionFailed(Exception):
    """No shell among our parents (or they could not be read)."""


def detect_shell() -> tuple[str, str]:
    """(name, command) of the shell this process runs in, as shellingham.detect_shell() says."""
    if sys.platform != "linux" or not os.path.exists(f"/proc/{os.getpid()}/stat"):
        import shellingham  # BSD procfs or ps: shellingham's own code

        return shellingham.detect_shell()
    pid = str(os.getpid())
    for _ in range(MAX_DEPTH):
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            ppid = _STAT_PARTS.findall(f.read())[3]
        with open(f"/proc/{pid}/cmdline", encoding=sys.getfilesystemencoding() or "utf-8",
                  errors="replace") as f:
            args = tuple(f.read().split("\0")[:-1])
        if not args:  # a process without a command line (shellingham fails there too)
            raise DetectionFailed(f"process {pid} has no command line")
        shell = _shell_of(*args)
        if shell:
            return shell
        if ppid == "0":
            break
        pid = ppid
    raise DetectionFailed("no shell among the parent processes")


def _shell_of(cmd: str, *args: str) -> tuple[str, str] | None:
    if cmd.startswith("-"):  # a login shell: $SHELL names it
        login = os.environ.get("SHELL", "") or cmd[1:]
        return os.path.basename(login).lower(), login
    name = os.path.basename(cmd).lower()
    if name == "rosetta" or _EMULATOR.fullmatch(name):
        cmd, args = args[0], args[1:]  # a containerised process: the command it runs
        name = os.path.basename(cmd).lower()
    if name in SHELL_NAMES:
        return name, cmd
    if _PYTHON.match(name):  # xonsh runs as a Python script
        for arg in args:
            if os.path.basename(arg).lower() == "xonsh" and os.path.isfile(arg):
                return "xonsh", arg
    return None
