"""machine.shelldetect gives shellingham's answer, under real shells (it replaces shellingham
on Linux so that `machine env` does not import subprocess)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

PROBE = """import json, shellingham
from machine.shelldetect import detect_shell
print(json.dumps([list(detect_shell()), list(shellingham.detect_shell())]))
"""
# A second command after the probe keeps each shell alive (a lone command is exec'd in its place).
KEEP = {"fish": "; true", "tcsh": "; true"}


@pytest.fixture
def probe(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    return f"'{sys.executable}' '{script}'"


def answers(argv: list[str], env: dict | None = None) -> tuple[list, list]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env or dict(os.environ))
    assert out.returncode == 0, out.stderr
    ours, theirs = json.loads(out.stdout.strip().splitlines()[-1])
    return ours, theirs


@pytest.mark.parametrize("shell", ["bash", "dash", "zsh", "fish", "tcsh"])
def test_same_answer_as_shellingham_under_each_shell(shell, probe):
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed")  # .ci/install-deps installs them all
    ours, theirs = answers([path, "-c", f"{probe}{KEEP.get(shell, '; true')}"])
    assert ours == theirs
    assert ours == [shell, path] or ours[0] == shell  # the nearest shell, not the one running pytest


def test_login_shell_is_named_by_SHELL(probe):
    """A login shell shows up as `-bash`: both take $SHELL's name, whatever it says."""
    env = dict(os.environ, SHELL="/usr/bin/zsh")
    ours, theirs = answers(["bash", "-c", f'exec -a -bash bash -c "{probe}; true"'], env)
    assert ours == theirs == ["zsh", "/usr/bin/zsh"]


def test_a_python_parent_is_walked_past(tmp_path):
    """A Python program between us and the shell (a Makefile, a test runner) is not a shell."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    runner = tmp_path / "runner.py"
    runner.write_text(f"import subprocess, sys\nsubprocess.run([sys.executable, {str(script)!r}])\n")
    ours, theirs = answers(["dash", "-c", f"'{sys.executable}' '{runner}'; true"])
    assert ours == theirs == ["dash", "dash"]
