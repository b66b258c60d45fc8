"""Tests for machine.clientconfig: `machine env` output and docker contexts.

The expected `env` texts below are written out by hand from docker-machine
0.16.2's commands/env.go:

    envTmpl = {{.Prefix}}DOCKER_TLS_VERIFY{{.Delimiter}}{{.DockerTLSVerify}}{{.Suffix}}
              {{.Prefix}}DOCKER_HOST...{{.Prefix}}DOCKER_CERT_PATH...{{.Prefix}}DOCKER_MACHINE_NAME...
              {{if .ComposePathsVar}}...COMPOSE_CONVERT_WINDOWS_PATHS...true...{{end}}
              {{if .NoProxyVar}}{{.Prefix}}{{.NoProxyVar}}{{.Delimiter}}{{.NoProxyValue}}{{.Suffix}}{{end}}
              {{.UsageHint}}

    shellCfgSet   prefix / delimiter / suffix:
      fish        `set -gx ` / ` "` / `";\n`
      powershell  `$Env:` / ` = "` / `"\n`
      cmd         `SET ` / `=` / `\n`
      tcsh        `setenv ` / ` "` / `";\n`
      emacs       `(setenv "` / `" "` / `")\n`
      default     `export ` / `="` / `"\n`
    shellCfgUnset (values empty):
      fish        `set -e ` / `` / `;\n`
      powershell  `Remove-Item Env:\\` (Go raw string: two backslashes) / `` / `\n`
      cmd         `SET ` / `=` / `\n`
      emacs       `(setenv "` / `" nil` / `)\n`
      tcsh        `unsetenv ` / `` / `;\n`
      default     `unset ` / `` / `\n`
    GenerateUsageHint: "%s Run this command to configure your shell: \n%s %s\n" with
      fish `eval (%s)`, powershell `& %s | Invoke-Expression`,
      cmd `\t@FOR /f "tokens=*" %%i IN ('%s') DO @%%i` (comment REM),
      emacs `(with-temp-buffer (shell-command "%s" (current-buffer)) (eval-buffer))` (comment ;;),
      tcsh "eval `%s`" (comment :), default `eval $(%s)`; args[0] is double-quoted
      when it contains a space or a backslash.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from machine import clientconfig as cc
from machine.errors import MachineError, NotFound, UsageError

REPO = Path(__file__).resolve().parents[2]

NAME = "dev"
HOST = "tcp://192.168.99.100:2376"
CERTS = "/home/user/.docker/machine/machines/dev"


def env_for(shell, **kw):
    args = dict(
        shell=shell,
        machine_name=NAME,
        docker_host=HOST,
        cert_path=CERTS,
        environ={},
        windows=False,
    )
    args.update(kw)
    return cc.render_env(**args)


# ---------------------------------------------------------------------------
# set, every shell, literal expected bytes
# ---------------------------------------------------------------------------

SET_EXPECTED = {
    "bash": (
        ("machine", "env", "dev"),
        'export DOCKER_TLS_VERIFY="1"\n'
        'export DOCKER_HOST="tcp://192.168.99.100:2376"\n'
        'export DOCKER_CERT_PATH="/home/user/.docker/machine/machines/dev"\n'
        'export DOCKER_MACHINE_NAME="dev"\n'
        "# Run this command to configure your shell: \n"
        "# eval $(machine env dev)\n",
    ),
    "sh": (
        ("machine", "env", "--shell=sh", "dev"),
        'export DOCKER_TLS_VERIFY="1"\n'
        'export DOCKER_HOST="tcp://192.168.99.100:2376"\n'
        'export DOCKER_CERT_PATH="/home/user/.docker/machine/machines/dev"\n'
        'export DOCKER_MACHINE_NAME="dev"\n'
        "# Run this command to configure your shell: \n"
        "# eval $(machine env --shell=sh dev)\n",
    ),
    "zsh": (
        ("machine", "env", "dev"),
        'export DOCKER_TLS_VERIFY="1"\n'
        'export DOCKER_HOST="tcp://192.168.99.100:2376"\n'
        'export DOCKER_CERT_PATH="/home/user/.docker/machine/machines/dev"\n'
        'export DOCKER_MACHINE_NAME="dev"\n'
        "# Run this command to configure your shell: \n"
        "# eval $(machine env dev)\n",
    ),
    "fish": (
        ("./machine", "env", "--shell=fish", "dev"),
        'set -gx DOCKER_TLS_VERIFY "1";\n'
        'set -gx DOCKER_HOST "tcp://192.168.99.100:2376";\n'
        'set -gx DOCKER_CERT_PATH "/home/user/.docker/machine/machines/dev";\n'
        'set -gx DOCKER_MACHINE_NAME "dev";\n'
        "# Run this command to configure your shell: \n"
        "# eval (./machine env --shell=fish dev)\n",
    ),
    "powershell": (
        ("./machine", "env", "--shell=powershell", "dev"),
        '$Env:DOCKER_TLS_VERIFY = "1"\n'
        '$Env:DOCKER_HOST = "tcp://192.168.99.100:2376"\n'
        '$Env:DOCKER_CERT_PATH = "/home/user/.docker/machine/machines/dev"\n'
        '$Env:DOCKER_MACHINE_NAME = "dev"\n'
        "# Run this command to configure your shell: \n"
        "# & ./machine env --shell=powershell dev | Invoke-Expression\n",
    ),
    "cmd": (
        ("./machine", "env", "--shell=cmd", "dev"),
        "SET DOCKER_TLS_VERIFY=1\n"
        "SET DOCKER_HOST=tcp://192.168.99.100:2376\n"
        "SET DOCKER_CERT_PATH=/home/user/.docker/machine/machines/dev\n"
        "SET DOCKER_MACHINE_NAME=dev\n"
        "REM Run this command to configure your shell: \n"
        "REM \t@FOR /f \"tokens=*\" %i IN ('./machine env --shell=cmd dev') DO @%i\n",
    ),
    "tcsh": (
        ("./machine", "env", "--shell=tcsh", "dev"),
        'setenv DOCKER_TLS_VERIFY "1";\n'
        'setenv DOCKER_HOST "tcp://192.168.99.100:2376";\n'
        'setenv DOCKER_CERT_PATH "/home/user/.docker/machine/machines/dev";\n'
        'setenv DOCKER_MACHINE_NAME "dev";\n'
        ": Run this command to configure your shell: \n"
        ": eval `./machine env --shell=tcsh dev`\n",
    ),
    "emacs": (
        ("./machine", "env", "--shell=emacs", "dev"),
        '(setenv "DOCKER_TLS_VERIFY" "1")\n'
        '(setenv "DOCKER_HOST" "tcp://192.168.99.100:2376")\n'
        '(setenv "DOCKER_CERT_PATH" "/home/user/.docker/machine/machines/dev")\n'
        '(setenv "DOCKER_MACHINE_NAME" "dev")\n'
        ";; Run this command to configure your shell: \n"
        ';; (with-temp-buffer (shell-command "./machine env --shell=emacs dev" (current-buffer)) (eval-buffer))\n',
    ),
}

UNSET_EXPECTED = {
    "bash": (
        ("machine", "env", "--unset"),
        "unset DOCKER_TLS_VERIFY\n"
        "unset DOCKER_HOST\n"
        "unset DOCKER_CERT_PATH\n"
        "unset DOCKER_MACHINE_NAME\n"
        "# Run this command to configure your shell: \n"
        "# eval $(machine env --unset)\n",
    ),
    "sh": (
        ("machine", "env", "-u"),
        "unset DOCKER_TLS_VERIFY\n"
        "unset DOCKER_HOST\n"
        "unset DOCKER_CERT_PATH\n"
        "unset DOCKER_MACHINE_NAME\n"
        "# Run this command to configure your shell: \n"
        "# eval $(machine env -u)\n",
    ),
    "zsh": (
        ("machine", "env", "--unset"),
        "unset DOCKER_TLS_VERIFY\n"
        "unset DOCKER_HOST\n"
        "unset DOCKER_CERT_PATH\n"
        "unset DOCKER_MACHINE_NAME\n"
        "# Run this command to configure your shell: \n"
        "# eval $(machine env --unset)\n",
    ),
    "fish": (
        ("./machine", "env", "--shell=fish", "--unset"),
        "set -e DOCKER_TLS_VERIFY;\n"
        "set -e DOCKER_HOST;\n"
        "set -e DOCKER_CERT_PATH;\n"
        "set -e DOCKER_MACHINE_NAME;\n"
        "# Run this command to configure your shell: \n"
        "# eval (./machine env --shell=fish --unset)\n",
    ),
    "powershell": (
        ("./machine", "env", "--shell=powershell", "--unset"),
        "Remove-Item Env:\\\\DOCKER_TLS_VERIFY\n"
        "Remove-Item Env:\\\\DOCKER_HOST\n"
        "Remove-Item Env:\\\\DOCKER_CERT_PATH\n"
        "Remove-Item Env:\\\\DOCKER_MACHINE_NAME\n"
        "# Run this command to configure your shell: \n"
        "# & ./machine env --shell=powershell --unset | Invoke-Expression\n",
    ),
    "cmd": (
        ("./machine", "env", "--shell=cmd", "--unset"),
        "SET DOCKER_TLS_VERIFY=\n"
        "SET DOCKER_HOST=\n"
        "SET DOCKER_CERT_PATH=\n"
        "SET DOCKER_MACHINE_NAME=\n"
        "REM Run this command to configure your shell: \n"
        "REM \t@FOR /f \"tokens=*\" %i IN ('./machine env --shell=cmd --unset') DO @%i\n",
    ),
    "tcsh": (
        ("./machine", "env", "--shell=tcsh", "--unset"),
        "unsetenv DOCKER_TLS_VERIFY;\n"
        "unsetenv DOCKER_HOST;\n"
        "unsetenv DOCKER_CERT_PATH;\n"
        "unsetenv DOCKER_MACHINE_NAME;\n"
        ": Run this command to configure your shell: \n"
        ": eval `./machine env --shell=tcsh --unset`\n",
    ),
    "emacs": (
        ("./machine", "env", "--shell=emacs", "--unset"),
        '(setenv "DOCKER_TLS_VERIFY" nil)\n'
        '(setenv "DOCKER_HOST" nil)\n'
        '(setenv "DOCKER_CERT_PATH" nil)\n'
        '(setenv "DOCKER_MACHINE_NAME" nil)\n'
        ";; Run this command to configure your shell: \n"
        ';; (with-temp-buffer (shell-command "./machine env --shell=emacs --unset" (current-buffer)) (eval-buffer))\n',
    ),
}


def test_expected_tables_cover_every_shell():
    assert set(SET_EXPECTED) == set(cc.SHELLS) == set(UNSET_EXPECTED)


@pytest.mark.parametrize("shell", cc.SHELLS)
def test_set_matches_docker_machine(shell):
    cmdline, expected = SET_EXPECTED[shell]
    assert env_for(shell, command_line=cmdline) == expected


@pytest.mark.parametrize("shell", cc.SHELLS)
def test_unset_matches_docker_machine(shell):
    cmdline, expected = UNSET_EXPECTED[shell]
    assert env_for(shell, command_line=cmdline, unset=True) == expected


def test_unset_ignores_machine_fields():
    a = cc.render_env(shell="bash", machine_name="x", docker_host="tcp://1.1.1.1:1", cert_path="/x",
                      unset=True, environ={}, command_line=("machine", "env", "-u"))
    b = cc.render_env(shell="bash", machine_name="", docker_host="", cert_path="",
                      unset=True, environ={}, command_line=("machine", "env", "-u"))
    assert a == b


def test_default_command_line_in_hint():
    out = cc.render_env(shell="bash", machine_name=NAME, docker_host=HOST, cert_path=CERTS, environ={})
    assert out.endswith("# Run this command to configure your shell: \n# eval $(machine env NAME)\n")


# --- usage hint: docker-machine TestHints cases (commands/env_test.go) -------


@pytest.mark.parametrize(
    "shell,args,hint",
    [
        ("bash", ["machine", "env", "--no-proxy", "--swarm", "default"],
         "# Run this command to configure your shell: \n# eval $(machine env --no-proxy --swarm default)\n"),
        ("bash", ["C:\\\\Program Files\\docker-machine.exe", "env", "default"],
         "# Run this command to configure your shell: \n"
         '# eval $("C:\\\\Program Files\\docker-machine.exe" env default)\n'),
        ("bash", ["/opt/my tools/machine", "env", "default"],
         '# Run this command to configure your shell: \n# eval $("/opt/my tools/machine" env default)\n'),
        ("powershell", ["C:\\\\Program Files\\docker-machine.exe", "env", "--shell=powershell", "default"],
         "# Run this command to configure your shell: \n"
         '# & "C:\\\\Program Files\\docker-machine.exe" env --shell=powershell default | Invoke-Expression\n'),
        ("cmd", ["C:\\\\Program Files\\docker-machine.exe", "env", "--shell=cmd", "default"],
         "REM Run this command to configure your shell: \n"
         "REM \t@FOR /f \"tokens=*\" %i IN ('\"C:\\\\Program Files\\docker-machine.exe\" env --shell=cmd default')"
         " DO @%i\n"),
    ],
)
def test_usage_hint_quoting(shell, args, hint):
    out = cc.render_env(shell=shell, machine_name="default", docker_host=HOST, cert_path=CERTS,
                        environ={}, command_line=args, windows=False)
    assert out.endswith(hint)


def test_command_line_not_mutated():
    args = ["/opt/my tools/machine", "env", "dev"]
    env_for("bash", command_line=args)
    assert args[0] == "/opt/my tools/machine"


# --- NO_PROXY (docker-machine shellCfgSet + findNoProxyFromEnv) --------------


def test_no_proxy_without_existing_value():
    out = env_for("bash", no_proxy=True, command_line=("machine", "env", "--no-proxy", "dev"))
    assert out == (
        'export DOCKER_TLS_VERIFY="1"\n'
        'export DOCKER_HOST="tcp://192.168.99.100:2376"\n'
        'export DOCKER_CERT_PATH="/home/user/.docker/machine/machines/dev"\n'
        'export DOCKER_MACHINE_NAME="dev"\n'
        'export NO_PROXY="192.168.99.100"\n'
        "# Run this command to configure your shell: \n"
        "# eval $(machine env --no-proxy dev)\n"
    )


def test_no_proxy_appends_to_lowercase_first():
    out = env_for("bash", no_proxy=True, environ={"no_proxy": "192.168.59.1", "NO_PROXY": "other"})
    assert 'export no_proxy="192.168.59.1,192.168.99.100"\n' in out
    assert "NO_PROXY" not in out


def test_no_proxy_uppercase_when_lowercase_empty():
    out = env_for("fish", no_proxy=True, environ={"no_proxy": "", "NO_PROXY": "localhost,.corp"})
    assert 'set -gx NO_PROXY "localhost,.corp,192.168.99.100";\n' in out


def test_no_proxy_already_present_is_kept_as_is():
    out = env_for("cmd", no_proxy=True, environ={"NO_PROXY": "localhost, 192.168.99.100"})
    assert "SET NO_PROXY=localhost, 192.168.99.100\n" in out


def test_no_proxy_entry_match_not_substring():
    # docker-machine used strings.Contains, so 192.168.99.10 was "already" in 192.168.99.100.
    out = env_for("bash", no_proxy=True, docker_host="tcp://192.168.99.10:2376",
                  environ={"NO_PROXY": "192.168.99.100"})
    assert 'export NO_PROXY="192.168.99.100,192.168.99.10"\n' in out


def test_no_proxy_explicit_ip_and_ipv6_host():
    out = env_for("bash", no_proxy=True, ip="10.1.2.3")
    assert 'export NO_PROXY="10.1.2.3"\n' in out
    out = env_for("bash", no_proxy=True, docker_host="tcp://[fd00::5]:2376")
    assert 'export NO_PROXY="fd00::5"\n' in out


def test_no_proxy_uses_os_environ_by_default(monkeypatch):
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "example.com")
    out = cc.render_env(shell="bash", machine_name=NAME, docker_host=HOST, cert_path=CERTS, no_proxy=True)
    assert 'export NO_PROXY="example.com,192.168.99.100"\n' in out


@pytest.mark.parametrize(
    "shell,line",
    [
        ("bash", "unset NO_PROXY\n"),
        ("fish", "set -e NO_PROXY;\n"),
        ("powershell", "Remove-Item Env:\\\\NO_PROXY\n"),
        ("cmd", "SET NO_PROXY=\n"),
        ("tcsh", "unsetenv NO_PROXY;\n"),
        ("emacs", '(setenv "NO_PROXY" nil)\n'),
    ],
)
def test_unset_no_proxy(shell, line):
    out = env_for(shell, unset=True, no_proxy=True)
    # NO_PROXY is the fifth and last variable line, before the hint, as in envTmpl.
    lines = out.splitlines(keepends=True)
    assert lines[4] == line
    assert "Run this command" in lines[5]


def test_unset_no_proxy_names_lowercase_var_and_never_glues_value():
    out = env_for("bash", unset=True, no_proxy=True, environ={"no_proxy": "10.0.0.1"})
    assert "unset no_proxy\n" in out
    assert "10.0.0.1" not in out


def test_windows_adds_compose_paths_var():
    out = env_for("powershell", windows=True, command_line=("machine", "env", "dev"))
    assert out.splitlines()[4] == '$Env:COMPOSE_CONVERT_WINDOWS_PATHS = "true"'
    # ... and before NO_PROXY, as in envTmpl.
    out = env_for("cmd", windows=True, no_proxy=True)
    assert out.splitlines()[4:6] == ["SET COMPOSE_CONVERT_WINDOWS_PATHS=true", "SET NO_PROXY=192.168.99.100"]
    # unset never prints it (shellCfgUnset leaves ComposePathsVar false)
    assert "COMPOSE" not in env_for("cmd", windows=True, unset=True)


def test_tls_verify_false_omits_the_variable():
    out = env_for("bash", tls_verify=False)
    assert "DOCKER_TLS_VERIFY" not in out
    assert out.startswith('export DOCKER_HOST="tcp://192.168.99.100:2376"\n')


def test_unknown_shell_is_a_usage_error():
    with pytest.raises(UsageError) as e:
        env_for("nu")
    assert "--shell" in str(e.value) and "powershell" in str(e.value)


# --- quoting: byte-identical for ordinary values, escaped where docker-machine broke


def test_windows_path_kept_verbatim_where_backslash_is_literal():
    path = "C:\\Users\\me\\.docker\\machine\\machines\\dev"
    for shell in ("bash", "fish", "powershell", "cmd", "tcsh"):
        assert path in env_for(shell, cert_path=path)


def test_escaping_per_shell():
    v = 'a"b$c`d\\'
    assert 'export DOCKER_CERT_PATH="a\\"b\\$c\\`d\\\\"\n' in env_for("bash", cert_path=v)
    assert 'set -gx DOCKER_CERT_PATH "a\\"b\\$c`d\\\\";\n' in env_for("fish", cert_path=v)
    assert '$Env:DOCKER_CERT_PATH = "a`"b`$c``d\\"\n' in env_for("powershell", cert_path=v)
    assert '(setenv "DOCKER_CERT_PATH" "a\\"b$c`d\\\\")\n' in env_for("emacs", cert_path=v)
    with pytest.raises(UsageError, match="cmd cannot quote"):
        env_for("cmd", cert_path=v)  # a " (or % or !) has no safe form in cmd
    assert 'SET "DOCKER_CERT_PATH=a&b$c`d\\"\n' in env_for("cmd", cert_path="a&b$c`d\\")


# ---------------------------------------------------------------------------
# the output really works in real shells
# ---------------------------------------------------------------------------

VARS = ("DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME", "NO_PROXY")


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_") and k.lower() != "no_proxy"}
    return env


def _run(argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env or _clean_env())


POSIX_SHELLS = [s for s in ("bash", "sh") if shutil.which(s)]
PRINT_VARS = "; ".join(f'printf "%s|" "${{{v}-UNSET}}"' for v in VARS)


@pytest.mark.parametrize("shell", POSIX_SHELLS)
@pytest.mark.parametrize("quoted", [True, False], ids=["eval-quoted", "eval-unquoted"])
def test_posix_shell_eval_sets_variables(tmp_path, shell, quoted):
    f = tmp_path / "env.sh"
    f.write_text(env_for(shell, no_proxy=True, environ={"NO_PROXY": "localhost"},
                         command_line=("machine", "env", "dev")))
    # docker-machine's own hint is the unquoted `eval $(...)`; both must work.
    ev = 'eval "$(cat "$1")"' if quoted else 'eval $(cat "$1")'
    r = _run([shell, "-c", f"NO_PROXY=localhost; {ev}; {PRINT_VARS}", shell, str(f)])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.split("|")[:5] == ["1", HOST, CERTS, NAME, "localhost,192.168.99.100"]
    # exported, not just shell variables
    r = _run([shell, "-c", f'{ev}; env | grep "^DOCKER_HOST="', shell, str(f)])
    assert r.stdout == f"DOCKER_HOST={HOST}\n"


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_posix_shell_eval_unset(tmp_path, shell):
    f = tmp_path / "unset.sh"
    f.write_text(env_for(shell, unset=True, no_proxy=True))
    pre = " ".join(f"export {v}=x;" for v in VARS)
    r = _run([shell, "-c", f'{pre} eval "$(cat "$1")"; {PRINT_VARS}', shell, str(f)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("|")[:5] == ["UNSET"] * 5


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_posix_shell_hostile_values_round_trip(tmp_path, shell):
    path = '/home/o\'brien/it "is" $HOME `id` \\n \\ end\\'
    f = tmp_path / "env.sh"
    f.write_text(env_for(shell, cert_path=path))
    r = _run([shell, "-c", 'eval "$(cat "$1")"; printf "%s" "$DOCKER_CERT_PATH"', shell, str(f)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == path


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh not installed")
def test_zsh_eval(tmp_path):
    f = tmp_path / "env.zsh"
    f.write_text(env_for("zsh", cert_path='/a "b" $c'))
    r = _run(["zsh", "-c", 'eval "$(cat "$1")"; print -rn -- "$DOCKER_HOST|$DOCKER_CERT_PATH"', "zsh", str(f)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f'{HOST}|/a "b" $c'


@pytest.mark.skipif(not shutil.which("fish"), reason="fish not installed")
def test_fish_source(tmp_path):
    f = tmp_path / "env.fish"
    f.write_text(env_for("fish", cert_path='/a "b" $c \\ d'))
    r = _run(["fish", "-c", f"source {f}; printf '%s|%s' $DOCKER_HOST $DOCKER_CERT_PATH"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f'{HOST}|/a "b" $c \\ d'
    u = tmp_path / "unset.fish"
    u.write_text(env_for("fish", unset=True))
    r = _run(["fish", "-c", f"set -gx DOCKER_HOST x; source {u}; set -q DOCKER_HOST; or echo gone"])
    assert r.stdout.strip() == "gone"


@pytest.mark.skipif(not shutil.which("tcsh"), reason="tcsh not installed")
def test_tcsh_source(tmp_path):
    f = tmp_path / "env.csh"
    # the hint is a `:` line holding backquotes; make it harmless when sourced
    f.write_text(env_for("tcsh", command_line=("true",)))
    r = _run(["tcsh", "-f", "-c", f"source {f}; printenv DOCKER_HOST"])
    assert r.stdout.strip() == HOST, r.stderr


# ---------------------------------------------------------------------------
# detect_shell
# ---------------------------------------------------------------------------


@pytest.fixture
def fake_shellingham(monkeypatch):
    """What the parent-process walk (machine.shelldetect, shellingham's rules) reports."""
    from machine import shelldetect

    def use(result):
        def detect(*a, **k):
            if isinstance(result, Exception):
                raise result
            return result
        monkeypatch.setattr(shelldetect, "detect_shell", detect)

    return use


@pytest.mark.parametrize(
    "found,expected",
    [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish"), ("sh", "sh"), ("dash", "sh"), ("ksh", "sh"),
     ("pwsh", "powershell"), ("powershell", "powershell"), ("cmd", "cmd"), ("tcsh", "tcsh"), ("csh", "tcsh")],
)
def test_detect_shell_maps_shellingham_names(fake_shellingham, found, expected):
    fake_shellingham((found, f"/usr/bin/{found}"))
    assert cc.detect_shell() == expected


def test_detect_shell_falls_back_to_SHELL(fake_shellingham, monkeypatch):
    from machine.shelldetect import DetectionFailed

    fake_shellingham(DetectionFailed("no shell among the parents"))
    monkeypatch.setenv("SHELL", "/usr/local/bin/fish")
    assert cc.detect_shell() == "fish"
    monkeypatch.setenv("SHELL", "/usr/bin/pwsh")
    assert cc.detect_shell() == "powershell"


def test_detect_shell_defaults_to_bash(fake_shellingham, monkeypatch):
    fake_shellingham(RuntimeError("no /proc"))
    monkeypatch.delenv("SHELL", raising=False)
    assert cc.detect_shell() == "bash"


@pytest.mark.parametrize("found", ["nu", "xonsh", "elvish"])
def test_detect_shell_unknown_names_the_choices(fake_shellingham, found):
    fake_shellingham((found, f"/usr/bin/{found}"))
    with pytest.raises(UsageError) as e:
        cc.detect_shell()
    msg = str(e.value)
    assert found in msg and "--shell" in msg
    for s in cc.SHELLS:
        assert s in msg


def test_detect_shell_for_real():
    # Whatever runs the tests: either a shell we know, or a clear usage error.
    try:
        assert cc.detect_shell() in cc.SHELLS
    except UsageError as e:
        assert "--shell" in str(e)


def test_real_detection_through_a_shell(tmp_path):
    # `machine env` run from bash (or sh) sees that shell as its parent.
    code = "import machine.clientconfig as c; print(c.detect_shell())"
    env = _clean_env()
    env["PYTHONPATH"] = str(REPO)
    env.pop("SHELL", None)
    for shell, expected in (("bash", "bash"), ("dash", "sh")):
        if not shutil.which(shell):
            continue
        r = _run([shell, "-c", f'"{sys.executable}" -c "{code}"; true'], env=env)
        assert r.stdout.strip() == expected, r.stderr


def test_import_stays_light():
    code = (
        "import sys, machine.clientconfig\n"
        "heavy = [m for m in ('click', 'cryptography', 'paramiko', 'shellingham', 'jinja2', 'rich')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# docker contexts
# ---------------------------------------------------------------------------


def _pems():
    """A CA and a client certificate signed by it (small EC keys; fast)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem),
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
    )


@pytest.fixture(scope="module")
def pems():
    return _pems()


def ctx_id(name):
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_docker_config_dir():
    assert cc.docker_config_dir({"DOCKER_CONFIG": "/x/y", "HOME": "/h"}) == Path("/x/y")
    assert cc.docker_config_dir({"DOCKER_CONFIG": "", "HOME": "/h"}) == Path("/h/.docker")
    assert cc.docker_config_dir({"HOME": "/h"}) == Path("/h/.docker")
    assert cc.docker_config_dir({"DOCKER_CONFIG": "~/cfg", "HOME": "/h"}) == Path("~/cfg").expanduser()


def test_docker_config_dir_from_os_environ(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert cc.docker_config_dir() == tmp_path
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cc.docker_config_dir() == tmp_path / "home" / ".docker"


def test_functions_default_to_DOCKER_CONFIG(monkeypatch, tmp_path, pems):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    ca, cert, key = pems
    cc.write_context("envctx", docker_host="tcp://127.0.0.1:1", ca_pem=ca, cert_pem=cert, key_pem=key)
    assert (tmp_path / "contexts" / "meta" / ctx_id("envctx") / "meta.json").is_file()
    assert cc.context_exists("envctx")
    cc.use_context("envctx")
    assert cc.current_context() == "envctx"
    assert cc.remove_context("envctx")
    assert cc.current_context() is None


def test_write_context_layout_and_modes(tmp_path, pems):
    ca, cert, key = pems
    cc.write_context("dev", docker_host="tcp://192.168.99.100:2376", ca_pem=ca, cert_pem=cert,
                     key_pem=key, description="machine dev", config_dir=tmp_path)
    h = ctx_id("dev")
    meta = tmp_path / "contexts" / "meta" / h / "meta.json"
    assert json.loads(meta.read_text()) == {
        "Name": "dev",
        "Metadata": {"Description": "machine dev", "MachineManaged": True},
        "Endpoints": {"docker": {"Host": "tcp://192.168.99.100:2376", "SkipTLSVerify": False}},
    }
    tls = tmp_path / "contexts" / "tls" / h / "docker"
    assert (tls / "ca.pem").read_bytes() == ca
    assert (tls / "cert.pem").read_bytes() == cert
    assert (tls / "key.pem").read_bytes() == key
    assert mode(tls / "key.pem") == 0o600
    assert mode(tls / "cert.pem") == 0o600 and mode(tls / "ca.pem") == 0o600
    assert mode(tls) == 0o700 and mode(tls.parent) == 0o700
    assert mode(meta) == 0o644
    # no temp files left behind
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert leftovers == []
    # no config.json is created just by writing a context
    assert not (tmp_path / "config.json").exists()


def test_write_context_no_description_gives_empty_metadata(tmp_path, pems):
    cc.write_context("nodesc", docker_host="tcp://127.0.0.1:1", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    meta = tmp_path / "contexts" / "meta" / ctx_id("nodesc") / "meta.json"
    # the exact bytes `docker context create nodesc --docker host=tcp://127.0.0.1:1` writes,
    # plus our ownership mark in Metadata (which the docker CLI keeps as an additional field)
    assert meta.read_text() == (
        '{"Name":"nodesc","Metadata":{"MachineManaged":true},"Endpoints":{"docker":'
        '{"Host":"tcp://127.0.0.1:1","SkipTLSVerify":false}}}'
    )


def test_write_context_is_idempotent_and_replaces(tmp_path, pems):
    ca, cert, key = pems
    for _ in range(2):
        cc.write_context("dev", docker_host="tcp://10.0.0.1:2376", ca_pem=ca, cert_pem=cert, key_pem=key,
                         config_dir=tmp_path)
    cc.write_context("dev", docker_host="tcp://10.0.0.2:2376", ca_pem=b"CA2", cert_pem=b"C2", key_pem=b"K2",
                     config_dir=tmp_path)
    h = ctx_id("dev")
    meta = json.loads((tmp_path / "contexts" / "meta" / h / "meta.json").read_text())
    assert meta["Endpoints"]["docker"]["Host"] == "tcp://10.0.0.2:2376"
    assert (tmp_path / "contexts" / "tls" / h / "docker" / "key.pem").read_bytes() == b"K2"
    assert len(list((tmp_path / "contexts" / "meta").iterdir())) == 1


def test_write_context_without_tls_material(tmp_path, pems):
    cc.write_context("dev", docker_host="tcp://10.0.0.1:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    cc.write_context("dev", docker_host="tcp://10.0.0.1:2375", ca_pem=b"", cert_pem=b"", key_pem=b"",
                     config_dir=tmp_path)
    assert not (tmp_path / "contexts" / "tls" / ctx_id("dev")).exists()
    assert cc.context_exists("dev", tmp_path)


@pytest.mark.parametrize("bad", ["default", "a", "a/b", "../x", "-x", "", "a b", "é1", "ab\n"])
def test_write_context_rejects_names_docker_rejects(tmp_path, bad):
    with pytest.raises(UsageError):
        cc.write_context(bad, docker_host="tcp://1.2.3.4:2376", ca_pem=b"x", cert_pem=b"x", key_pem=b"x",
                         config_dir=tmp_path)
    assert not (tmp_path / "contexts").exists()


def test_write_context_requires_host(tmp_path):
    with pytest.raises(UsageError):
        cc.write_context("dev", docker_host="", ca_pem=b"x", cert_pem=b"x", key_pem=b"x", config_dir=tmp_path)


def test_context_exists(tmp_path, pems):
    assert not cc.context_exists("dev", tmp_path)
    assert cc.context_exists("default", tmp_path)
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    assert cc.context_exists("dev", tmp_path)
    assert not cc.context_exists("dev2", tmp_path)


def test_remove_context(tmp_path, pems):
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    cc.write_context("other", docker_host="tcp://1.2.3.5:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    assert cc.remove_context("dev", tmp_path) is True
    assert not cc.context_exists("dev", tmp_path)
    assert not (tmp_path / "contexts" / "tls" / ctx_id("dev")).exists()
    assert not (tmp_path / "contexts" / "meta" / ctx_id("dev")).exists()
    assert cc.context_exists("other", tmp_path)
    assert cc.remove_context("dev", tmp_path) is False  # idempotent
    assert cc.remove_context("never", tmp_path) is False
    with pytest.raises(UsageError):
        cc.remove_context("default", tmp_path)


def test_remove_current_context_resets_to_default(tmp_path, pems):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"r.example": {"auth": "eA=="}}, "currentContext": "dev"}))
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    assert cc.remove_context("dev", tmp_path)
    assert cc.current_context(tmp_path) is None
    assert json.loads(cfg.read_text()) == {"auths": {"r.example": {"auth": "eA=="}}}


def test_remove_context_not_current_leaves_config_alone(tmp_path, pems):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"currentContext": "other"}')
    before = cfg.stat().st_mtime_ns, cfg.read_text()
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    cc.remove_context("dev", tmp_path)
    assert (cfg.stat().st_mtime_ns, cfg.read_text()) == before


def test_remove_context_survives_broken_config(tmp_path, pems):
    (tmp_path / "config.json").write_text("{not json")
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    assert cc.remove_context("dev", tmp_path)
    assert (tmp_path / "config.json").read_text() == "{not json"


def _ctx(tmp_path, name, pems):
    cc.write_context(name, docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)


def test_use_context_new_config_is_0600(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cc.use_context("dev", tmp_path)
    cfg = tmp_path / "config.json"
    assert mode(cfg) == 0o600
    assert json.loads(cfg.read_text()) == {"currentContext": "dev"}
    assert cc.current_context(tmp_path) == "dev"


def test_use_context_creates_missing_config_dir(tmp_path, pems):
    d = tmp_path / "nested" / ".docker"
    _ctx(d, "dev", pems)
    cc.use_context("dev", d)
    assert cc.current_context(d) == "dev"


def test_use_context_preserves_keys_order_and_mode(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cfg = tmp_path / "config.json"
    original = {
        "auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}},
        "credsStore": "desktop",
        "psFormat": "table {{.ID}}",
        "currentContext": "old",
        "plugins": {"x": {"y": "z"}},
        "unicodé": "✓",
    }
    cfg.write_text(json.dumps(original))
    os.chmod(cfg, 0o640)
    cc.use_context("dev", tmp_path)
    data = json.loads(cfg.read_text(encoding="utf-8"))
    assert data == dict(original, currentContext="dev")
    assert list(data) == list(original)
    assert mode(cfg) == 0o640
    # docker's own style: tab-indented
    assert cfg.read_text().startswith('{\n\t"auths"')


def test_use_default_removes_key(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {}, "currentContext": "dev"}))
    cc.use_context("default", tmp_path)
    assert json.loads(cfg.read_text()) == {"auths": {}}
    assert cc.current_context(tmp_path) is None
    cc.use_context("default", tmp_path)  # idempotent
    assert json.loads(cfg.read_text()) == {"auths": {}}


def test_use_default_without_config_creates_nothing(tmp_path):
    cc.use_context("default", tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_use_missing_context_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        cc.use_context("ghost", tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_use_context_refuses_to_clobber_broken_config(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cfg = tmp_path / "config.json"
    cfg.write_text("{broken")
    with pytest.raises(MachineError) as e:
        cc.use_context("dev", tmp_path)
    assert str(cfg) in str(e.value)
    assert cfg.read_text() == "{broken"


def test_use_context_empty_config_file(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cfg = tmp_path / "config.json"
    cfg.write_text("")
    os.chmod(cfg, 0o600)
    cc.use_context("dev", tmp_path)
    assert json.loads(cfg.read_text()) == {"currentContext": "dev"}


def test_use_context_writes_through_symlink(tmp_path, pems):
    d = tmp_path / "docker"
    _ctx(d, "dev", pems)
    real = tmp_path / "dotfiles" / "docker-config.json"
    real.parent.mkdir()
    real.write_text('{"auths": {}}')
    (d / "config.json").symlink_to(real)
    cc.use_context("dev", d)
    assert (d / "config.json").is_symlink()
    assert json.loads(real.read_text()) == {"auths": {}, "currentContext": "dev"}


def test_current_context(tmp_path):
    assert cc.current_context(tmp_path) is None
    (tmp_path / "config.json").write_text('{"currentContext": ""}')
    assert cc.current_context(tmp_path) is None
    (tmp_path / "config.json").write_text('{"currentContext": "x1"}')
    assert cc.current_context(tmp_path) == "x1"


# --- against the real docker CLI ---------------------------------------------

DOCKER = shutil.which("docker")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")


def docker(cfg, *args):
    env = _clean_env()
    env["DOCKER_CONFIG"] = str(cfg)
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=60, env=env)


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@needs_docker
def test_docker_cli_reads_our_context(tmp_path, pems):
    port = closed_port()
    host = f"tcp://127.0.0.1:{port}"
    cc.write_context("mach-1", docker_host=host, ca_pem=pems[0], cert_pem=pems[1], key_pem=pems[2],
                     description="machine mach-1", config_dir=tmp_path)

    r = docker(tmp_path, "context", "ls", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["Name"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert rows["mach-1"]["DockerEndpoint"] == host
    assert rows["mach-1"]["Description"] == "machine mach-1"
    assert rows["mach-1"]["Error"] == ""

    r = docker(tmp_path, "context", "inspect", "mach-1")
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(r.stdout)
    assert info["Endpoints"]["docker"] == {"Host": host, "SkipTLSVerify": False}
    assert sorted(info["TLSMaterial"]["docker"]) == ["ca.pem", "cert.pem", "key.pem"]

    # The client loads the TLS material and then fails to connect: not a config error.
    r = docker(tmp_path, "--context", "mach-1", "version")
    assert r.returncode != 0
    err = r.stderr.lower()
    assert f"127.0.0.1:{port}" in err
    assert "connection refused" in err or "cannot connect" in err, r.stderr
    for config_error in ("tls", "certificate", "x509", "context", "invalid", "failed to load"):
        assert config_error not in err, r.stderr


@needs_docker
def test_meta_json_identical_to_docker_context_create(tmp_path, pems):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    files = tmp_path / "pem"
    files.mkdir()
    for fname, data in zip(("ca.pem", "cert.pem", "key.pem"), pems):
        (files / fname).write_bytes(data)
    for desc in ("", "machine dev-2"):
        name = "dev-2" if desc else "dev-3"
        host = "tcp://127.0.0.1:2376"
        args = ["context", "create", name, "--docker",
                f"host={host},ca={files}/ca.pem,cert={files}/cert.pem,key={files}/key.pem"]
        if desc:
            args[3:3] = ["--description", desc]
        r = docker(theirs, *args)
        assert r.returncode == 0, r.stderr
        cc.write_context(name, docker_host=host, ca_pem=pems[0], cert_pem=pems[1], key_pem=pems[2],
                         description=desc, config_dir=ours)
        h = ctx_id(name)
        rel_meta = Path("contexts/meta", h, "meta.json")
        # identical but for our ownership mark
        our_meta = json.loads((ours / rel_meta).read_bytes())
        assert our_meta["Metadata"].pop("MachineManaged") is True
        assert json.dumps(our_meta, separators=(",", ":")).encode() == (theirs / rel_meta).read_bytes()
        for fname in ("ca.pem", "cert.pem", "key.pem"):
            rel = Path("contexts/tls", h, "docker", fname)
            assert (ours / rel).read_bytes() == (theirs / rel).read_bytes()
            assert mode(ours / rel) == mode(theirs / rel)
        for rel in (Path("contexts/tls", h), Path("contexts/tls", h, "docker"), Path("contexts/meta", h),
                    Path("contexts/meta", h, "meta.json")):
            assert mode(ours / rel) == mode(theirs / rel), rel


@needs_docker
def test_docker_cli_and_our_current_context_agree(tmp_path, pems):
    cc.write_context("mach-2", docker_host="tcp://127.0.0.1:1", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    (tmp_path / "config.json").write_text('{"auths": {}, "detachKeys": "ctrl-e,e"}')
    os.chmod(tmp_path / "config.json", 0o600)

    cc.use_context("mach-2", tmp_path)
    assert docker(tmp_path, "context", "show").stdout.strip() == "mach-2"

    # docker's own `context use` is read back by us, and keeps our file readable for docker
    r = docker(tmp_path, "context", "use", "default")
    assert r.returncode == 0, r.stderr
    assert cc.current_context(tmp_path) is None
    r = docker(tmp_path, "context", "use", "mach-2")
    assert r.returncode == 0, r.stderr
    assert cc.current_context(tmp_path) == "mach-2"
    assert json.loads((tmp_path / "config.json").read_text())["detachKeys"] == "ctrl-e,e"

    cc.remove_context("mach-2", tmp_path)
    assert docker(tmp_path, "context", "show").stdout.strip() == "default"
    r = docker(tmp_path, "context", "ls", "--format", "{{.Name}}")
    assert r.stdout.split() == ["default"]


@needs_docker
def test_docker_cli_removes_our_context_and_we_remove_theirs(tmp_path, pems):
    cc.write_context("mach-3", docker_host="tcp://127.0.0.1:1", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    r = docker(tmp_path, "context", "rm", "mach-3")
    assert r.returncode == 0, r.stderr
    assert not cc.context_exists("mach-3", tmp_path)
    assert not (tmp_path / "contexts" / "tls" / ctx_id("mach-3")).exists()

    r = docker(tmp_path, "context", "create", "theirs", "--docker", "host=tcp://127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert cc.context_exists("theirs", tmp_path)
    assert not cc.owned_context("theirs", tmp_path)
    with pytest.raises(cc.ForeignContext):  # a context docker made is never ours to remove
        cc.remove_context("theirs", tmp_path)
    r = docker(tmp_path, "context", "ls", "--format", "{{.Name}}")
    assert sorted(r.stdout.split()) == ["default", "theirs"]


# ---------------------------------------------------------------------------
# issue 13: contexts we did not create are never touched; modes under umask 000
# ---------------------------------------------------------------------------


def _foreign_ctx(cfg: Path, name: str, host="tcp://user.example:2376", with_tls=True) -> tuple[bytes, bytes]:
    """A context as `docker context create` writes it (no Machine mark)."""
    h = ctx_id(name)
    meta = cfg / "contexts" / "meta" / h / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": name, "Metadata": {"Description": "my own"},
                                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    key = b""
    if with_tls:
        tls = cfg / "contexts" / "tls" / h / "docker"
        tls.mkdir(parents=True)
        (tls / "key.pem").write_bytes(b"users key")
        key = (tls / "key.pem").read_bytes()
    return meta.read_bytes(), key


def test_foreign_context_is_never_overwritten_removed_or_used(tmp_path, pems):
    meta_before, key_before = _foreign_ctx(tmp_path, "prod")
    cfg = tmp_path / "config.json"
    cfg.write_text('{"currentContext": "prod"}')
    assert cc.context_exists("prod", tmp_path)
    assert cc.context_owner("prod", tmp_path) == "foreign" and not cc.owned_context("prod", tmp_path)
    for call in (
        lambda: cc.write_context("prod", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                                 key_pem=pems[2], config_dir=tmp_path),
        lambda: cc.check_context_free("prod", tmp_path),
        lambda: cc.remove_context("prod", tmp_path),
        lambda: cc.use_context("prod", tmp_path),
    ):
        with pytest.raises(cc.ForeignContext) as ei:
            call()
        msg = str(ei.value)
        assert "not created by Machine" in msg and "another name" in msg and "\n" not in msg
    assert cc.remove_context("prod", tmp_path, missing_ok_if_foreign=True) is False
    meta = tmp_path / "contexts" / "meta" / ctx_id("prod") / "meta.json"
    assert meta.read_bytes() == meta_before
    assert (tmp_path / "contexts" / "tls" / ctx_id("prod") / "docker" / "key.pem").read_bytes() == key_before
    assert cfg.read_text() == '{"currentContext": "prod"}'  # currentContext untouched


def test_unreadable_or_odd_meta_counts_as_foreign(tmp_path, pems):
    for name, content in (("garbled", "{nope"), ("list", "[]"), ("renamed", None), ("forged", "str")):
        meta = tmp_path / "contexts" / "meta" / ctx_id(name) / "meta.json"
        meta.parent.mkdir(parents=True)
        if content is None:  # marked, but for another name: not what we wrote there
            meta.write_text(json.dumps({"Name": "other", "Metadata": {"MachineManaged": True}}))
        elif content == "str":  # "true" as a string is not our mark
            meta.write_text(json.dumps({"Name": name, "Metadata": {"MachineManaged": "true"}}))
        else:
            meta.write_text(content)
        assert cc.context_owner(name, tmp_path) == "foreign", name
    fifo_dir = tmp_path / "contexts" / "meta" / ctx_id("fifo")
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "meta.json")
    assert cc.context_owner("fifo", tmp_path) == "foreign"  # and does not hang


def test_our_context_is_marked_and_replaced_and_removed(tmp_path, pems):
    store = tmp_path / "store"
    cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path, store_path=store)
    meta = json.loads((tmp_path / "contexts" / "meta" / ctx_id("dev") / "meta.json").read_text())
    assert meta["Metadata"] == {"MachineManaged": True, "MachineStorePath": str(store)}
    assert cc.owned_context("dev", tmp_path) and cc.owned_context("dev", tmp_path, store_path=store)
    # another store's machine of the same name may not take it over
    with pytest.raises(cc.ForeignContext, match="belongs to the store at"):
        cc.write_context("dev", docker_host="tcp://9.9.9.9:2376", ca_pem=b"", cert_pem=b"", key_pem=b"",
                         config_dir=tmp_path, store_path=tmp_path / "other-store")
    cc.write_context("dev", docker_host="tcp://1.2.3.5:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path, store_path=store)
    cc.use_context("dev", tmp_path, store_path=store)
    assert cc.remove_context("dev", tmp_path, store_path=store)
    assert cc.current_context(tmp_path) is None


def test_removing_ours_resets_current_only_when_it_points_at_ours(tmp_path, pems):
    _ctx(tmp_path, "dev", pems)
    cfg = tmp_path / "config.json"
    cfg.write_text('{"currentContext": "dev", "auths": {}}')
    assert cc.remove_context("dev", tmp_path)
    assert json.loads(cfg.read_text()) == {"auths": {}}
    # half-removed context of ours (TLS folder left, meta.json gone) is cleaned up,
    # and a currentContext naming it is left as it is: nothing proves it was ours
    tls = tmp_path / "contexts" / "tls" / ctx_id("gone") / "docker"
    tls.mkdir(parents=True)
    (tls / "key.pem").write_bytes(b"k")
    cfg.write_text('{"currentContext": "gone"}')
    assert cc.remove_context("gone", tmp_path)
    assert not tls.exists()
    assert cfg.read_text() == '{"currentContext": "gone"}'


def test_context_and_config_modes_under_umask_000(tmp_path, pems):
    old = os.umask(0)
    try:
        cfg = tmp_path / "home" / ".docker"
        cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                         key_pem=pems[2], config_dir=cfg)
        cc.use_context("dev", cfg)
    finally:
        os.umask(old)
    h = ctx_id("dev")
    assert mode(tmp_path / "home") == 0o700 and mode(cfg) == 0o700
    assert mode(cfg / "config.json") == 0o600
    assert mode(cfg / "contexts") == 0o755 and mode(cfg / "contexts" / "meta") == 0o755
    assert mode(cfg / "contexts" / "meta" / h) == 0o755 and mode(cfg / "contexts" / "meta" / h / "meta.json") == 0o644
    for d in (cfg / "contexts" / "tls", cfg / "contexts" / "tls" / h, cfg / "contexts" / "tls" / h / "docker"):
        assert mode(d) == 0o700, d
    for f in ("ca.pem", "cert.pem", "key.pem"):
        assert mode(cfg / "contexts" / "tls" / h / "docker" / f) == 0o600


@pytest.mark.parametrize("shell", cc.SHELLS)
@pytest.mark.parametrize("bad", ["tcp://1.2.3.4:2376\nrm -rf ~", "tcp://x\x00y", "tcp://x\ry", "tcp://x\u2028y"])
def test_values_with_line_breaks_or_nul_are_refused(shell, bad):
    with pytest.raises(UsageError) as ei:
        env_for(shell, docker_host=bad)
    assert "\n" not in str(ei.value) and "\x00" not in str(ei.value)


@pytest.mark.parametrize("shell", cc.SHELLS)
def test_newline_in_command_line_cannot_escape_the_hint_comment(shell):
    out = env_for(shell, command_line=("machine", "-s", "/tmp/x\ntouch /tmp/pwned", "env", "dev"))
    hint = out.splitlines()[-2:]
    assert len(hint) == 2 and "touch /tmp/pwned" in hint[1]
    comment = {"cmd": "REM ", "emacs": ";; ", "tcsh": ": "}.get(shell, "# ")
    assert all(line.startswith(comment) for line in hint)
    assert not any(line.startswith("touch") for line in out.splitlines())


def test_unmarked_context_of_an_older_machine_with_the_same_key_is_adopted(tmp_path, pems):
    h = ctx_id("dev")
    meta = tmp_path / "contexts" / "meta" / h / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": "dev", "Metadata": {"Description": "machine dev (qemu)"},
                                "Endpoints": {"docker": {"Host": "tcp://1.2.3.4:2376", "SkipTLSVerify": False}}}))
    tls = tmp_path / "contexts" / "tls" / h / "docker"
    tls.mkdir(parents=True)
    (tls / "ca.pem").write_bytes(pems[0])
    (tls / "key.pem").write_bytes(pems[2])
    with pytest.raises(cc.ForeignContext):  # another key: the user's, not ours
        cc.write_context("dev", docker_host="tcp://1.2.3.4:2376", ca_pem=pems[0], cert_pem=pems[1],
                         key_pem=b"another key", config_dir=tmp_path)
    cc.write_context("dev", docker_host="tcp://1.2.3.5:2376", ca_pem=pems[0], cert_pem=pems[1],
                     key_pem=pems[2], config_dir=tmp_path)
    assert cc.owned_context("dev", tmp_path)


def test_removal_killed_half_way_is_finished_by_the_next_one(tmp_path, pems, monkeypatch):
    _ctx(tmp_path, "dev", pems)
    real = cc._rmtree
    calls = []

    def once(path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the two removals
        return real(path)

    monkeypatch.setattr(cc, "_rmtree", once)
    with pytest.raises(KeyboardInterrupt):
        cc.remove_context("dev", tmp_path)
    monkeypatch.setattr(cc, "_rmtree", real)
    assert not (tmp_path / "contexts" / "tls" / ctx_id("dev")).exists()  # the key went first
    assert cc.context_exists("dev", tmp_path) and cc.owned_context("dev", tmp_path)
    assert cc.remove_context("dev", tmp_path)
    assert not cc.context_exists("dev", tmp_path)
