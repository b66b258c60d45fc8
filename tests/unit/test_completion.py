"""`machine completion bash|zsh|fish` and contrib/machine-prompt.sh, tried in the real shells
against a store with machines: bash through `complete -p` and the completion function it
registered, zsh through its own completion system (compinit, a TAB typed into an interactive
zsh on a pseudo-terminal), fish through `complete --do-complete`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A TAB typed into an interactive zsh (zpty), compadd wrapped to print what matched.
ZSH_CAPTURE = r"""
zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z "PROMPT='' ; autoload -U compinit ; compinit -u -D ; source ${(q)1}"
zpty -w z 'compadd() { local -a __h; builtin compadd -A __h "$@"; (( $#__h )) && print -r -- "HIT:${(j:|:)__h}"; }'
zpty -w z '_cap_done() { print -r -- "CAPDONE" }; comppostfuncs=( _cap_done ); bindkey "^I" complete-word'
zpty -w z "print -r -- READY"
local line
while zpty -r z line; do [[ $line == READY* ]] && break; done
zpty -w -n z "$2"$'\t'
while zpty -r z line; do
  [[ $line == *CAPDONE* ]] && break
  [[ $line == *HIT:* ]] && print -r -- "${${line#*HIT:}%%$'\r'}"
done
zpty -d z
"""

BASH_COMPLETE = r"""
source "$1"
complete -p machine
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<< "$COMP_LINE"; [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_machine
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("compl")
    bindir = root / "bin"
    bindir.mkdir()
    wrapper = bindir / "machine"  # the `machine` the scripts call back, from this checkout
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m machine \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(root / "store"), DOCKER_CONFIG=str(root / "docker"),
               PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", HOME=str(root), ZDOTDIR=str(root))
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_MACHINE_NAME", "MACHINE_NO_FAST"):
        env.pop(var, None)
    for name in ("web1", "db-2"):
        subprocess.run(["machine", "create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", name], env=env,
                       check=True, capture_output=True)
    scripts = {}
    for sh in ("bash", "zsh", "fish"):
        p = subprocess.run(["machine", "completion", sh], env=env, capture_output=True, text=True, check=True)
        scripts[sh] = root / f"machine.{sh}"
        scripts[sh].write_text(p.stdout)
    env["__ROOT"] = str(root)
    return env, scripts


def need(shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed (.ci/install-deps installs it)")


def complete(shell, env, scripts, line) -> list[str]:
    if shell == "bash":
        p = subprocess.run(["bash", "--norc", "-c", BASH_COMPLETE, "bash", str(scripts["bash"]), line], env=env,
                           capture_output=True, text=True, timeout=60)
        lines = p.stdout.splitlines()
        assert lines and lines[0] == "complete -o default -F _machine machine", p.stdout + p.stderr
        return sorted(w for w in lines[1:] if w)
    if shell == "zsh":
        cap = os.path.join(env["__ROOT"], "capture.zsh")
        with open(cap, "w") as f:
            f.write(ZSH_CAPTURE)
        p = subprocess.run(["zsh", "-f", cap, str(scripts["zsh"]), line], env=env, capture_output=True, text=True,
                           timeout=60)
        return sorted(w for hit in p.stdout.splitlines() for w in hit.split("|") if w.strip())
    p = subprocess.run(["fish", "--no-config", "-c", f"source {scripts['fish']}; complete --do-complete $argv[1]",
                        line], env=env, capture_output=True, text=True, timeout=60)
    return sorted(w.split("\t")[0] for w in p.stdout.splitlines() if w)


CASES = [
    ("machine en", ["env"]),
    ("machine ve", ["version"]),
    ("machine env ", ["db-2", "web1"]),
    ("machine env --sh", ["--shell"]),
    ("machine env --shell fi", ["fish"]),
    ("machine url w", ["web1"]),
    ("machine rm -y d", ["db-2"]),
    ("machine create -d non", ["none"]),
    ("machine create -d qemu --qemu-mem", ["--qemu-memory"]),
    ("machine create --driver none --none-u", ["--none-url"]),
    ("machine --storage-p", ["--storage-path"]),
    ("machine --bugsnag-api-token no-report ur", ["url"]),
    ("machine scp we", ["web1:"]),
    ("machine completion z", ["zsh"]),
    ("machine ls --fil", ["--filter"]),
]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("line,expected", CASES, ids=[c[0] for c in CASES])
def test_completion_in_the_real_shell(shell_env, shell, line, expected):
    need(shell)
    env, scripts = shell_env
    assert complete(shell, env, scripts, line) == expected


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_verbs_and_drivers_are_all_offered(shell_env, shell):
    need(shell)
    env, scripts = shell_env
    verbs = complete(shell, env, scripts, "machine ")
    for v in ("active", "completion", "config", "create", "env", "inspect", "ip", "ls", "rm", "scp", "ssh",
              "status", "url", "use", "version"):
        assert v in verbs
    drivers = complete(shell, env, scripts, "machine create -d ")
    for d in ("none", "generic", "qemu", "aws", "amazonec2", "openstack", "virtualbox", "vsphere", "azure", "google"):
        assert d in drivers


def test_other_store_through_storage_path(shell_env, tmp_path):
    need("bash")
    env, scripts = shell_env
    other = tmp_path / "other"
    subprocess.run(["machine", "-s", str(other), "create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "far"],
                   env=env, check=True, capture_output=True)
    assert complete("bash", env, scripts, f"machine -s {other} url ") == ["far"]


def test_scp_remote_part_after_colon_in_bash(shell_env):
    """bash splits words at ':'; the script offers only what follows it, so `web1:` is not doubled."""
    need("bash")
    env, scripts = shell_env
    assert complete("bash", env, scripts, "machine scp web1:") == []
    assert complete("bash", env, scripts, "machine scp ./x web") == ["web1:"]


def test_unknown_shell_is_refused(shell_env):
    env, _ = shell_env
    p = subprocess.run(["machine", "completion", "tcsh"], env=env, capture_output=True, text=True)
    assert p.returncode != 0 and "tcsh" in p.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_prompt_helper(shell_env, shell):
    need(shell)
    env, _ = shell_env
    prompt = os.path.join(REPO, "contrib", "machine-prompt.sh")
    script = (f"source {prompt}\n"
              'printf "<%s>" "$(__machine_ps1)"\n'
              'DOCKER_MACHINE_NAME=web1 ; printf "<%s>" "$(__machine_ps1 "(%s)")" ; unset DOCKER_MACHINE_NAME\n'
              'export DOCKER_CONTEXT=db-2 ; printf "<%s>" "$(__docker_machine_ps1)"\n'
              'MACHINE_PS1_SHOWSTATUS=true ; printf "<%s>" "$(__machine_ps1)"\n'
              'MACHINE_PS1_ACTIVE=false MACHINE_PS1_SHOWSTATUS=false ; printf "<%s>" "$(__machine_ps1)"\n')
    args = ["bash", "--norc", "-c", script] if shell == "bash" else ["zsh", "-f", "-c", script]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert p.stdout == "<><(web1)>< [db-2]>< [db-2 R]><>", p.stderr
