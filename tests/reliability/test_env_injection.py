"""`machine env` output fed hostile URLs and paths, evaluated by the real shells.

bash, dash, zsh, fish and tcsh run the output the ways users run it (docker-machine's
hints `eval $(...)`, `eval (...)`, ``eval `...` ``, plus `eval "$(...)"` and
`source`): the variables must hold exactly the value and no payload may run (every
payload would create the file `pwned` in the shell's working folder). PowerShell and
cmd are not installed here: their output is checked by a parser of their grammar.
A value no form can carry safely must be refused with one line, and only such values.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from machine import clientconfig as cc
from machine.errors import UsageError

P = "touch pwned"
HOSTILE = [
    "tcp://1.2.3.4:2376`touch pwned`", f"tcp://$({P}):2376", f'tcp://x"; {P}; "', f"tcp://x'; {P}; '",
    f'tcp://x\\"; {P}; \\"', "tcp://x!touch", "tcp://x!!", "tcp://x!-1", "tcp://x!$", "tcp://$HOME",
    "tcp://${HOME}", "tcp://x$", "tcp://x\\", "tcp://x\\\\", f"tcp://x\\$({P})", f"tcp://x`{P}`\\",
    f"tcp://x;{P}", f"tcp://x|{P}", f"tcp://x&{P}", f"tcp://x&&{P}", f"tcp://x||{P}", "tcp://x>pwned",
    "tcp://x<pwned", "tcp://x --tlsverify=false", "tcp://x -H tcp://evil:2375", f"tcp://x#c;{P}",
    "tcp://x%PATH%", f"tcp://x^&{P}", f"tcp://x\u201c; {P}; \u201d", f"tcp://x\u201e; {P}; \u201d",
    f"tcp://x\u2018; {P}; \u2019", "tcp://x\u201a'\u201b", f"tcp://x$({P})\u201c", "tcp://x{a,b}",
    "tcp://x{touch,pwned}", "tcp://x*", "tcp://x?[a]", "tcp://~root", "tcp://x  two  spaces",
    f"tcp://x({P})", f'tcp://x\\"$({P})\\"', f"tcp://x'\"'\"'; {P} #", "tcp://x=y", "tcp://[::1]:2376",
    "tcp://x%%", 'tcp://x!"', 'tcp://x`"`', "tcp://x:87958", "tcp://x\\'", "tcp://x$'\\x41'",
    "tcp://\u00fcn\u00efc\u00f8d\u00e9/\u00fc", "tcp://x @ y", "C:\\Users\\me\\.docker\\machine\\machines\\dev",
    f'C:\\Program Files\\x\\"; {P}', "tcp://x\\!", "tcp://x'\\!'", "tcp://x$((1+1))",
    "tcp://x${IFS}touch${IFS}pwned", f"tcp://x;eval {P}", "tcp://x)", "tcp://x(", f"/path with ; and | and & {P}",
    "tcp://x$argv[1]", "tcp://x%i", f'tcp://x"^"&{P}', "-n", "-e \\n", "", " leading and trailing ",
    "tcp://x$status", "tcp://x^pwned^x", "tcp://x\\\n", "tcp://x\n" + P, "tcp://x\r\n" + P, "tcp://x\x00y",
    "tcp://x\x1b[31m", "tcp://x\u2028" + P, "tcp://x\u0085" + P, "tcp://x\ty", "tcp://x\x7f",
    f"tcp://x`{P}`\u201d$x", f"tcp://x'${{{P}}}'", f"tcp://x$(<pwned)", "tcp://x<<EOF", "tcp://x\\`",
]

CONTROL = set(map(chr, range(0x20))) | {"\x7f", "\x85", "\u2028", "\u2029"}


def _must_refuse(shell: str, value: str) -> bool:
    if set(value) & CONTROL:
        return True
    if shell == "cmd" and set(value) & set('"%!'):
        return True
    if shell == "tcsh" and ("{" in value or "}" in value or "  " in value):
        return True
    return False


def _render(shell: str, value: str, counts) -> str | None:
    counts["inputs"] += 1
    try:
        out = cc.render_env(shell=shell, machine_name="dev", docker_host=value, cert_path=value,
                            environ={}, command_line=("machine", "-s", value, "env", "dev"), windows=False)
    except UsageError as e:
        assert _must_refuse(shell, value), f"{shell} refused a value it can carry: {value!r}: {e}"
        assert "\n" not in str(e) and "\r" not in str(e) and "\x00" not in str(e)
        counts["refused"] += 1
        return None
    except Exception:  # noqa: BLE001
        counts["tracebacks"] += 1
        raise
    assert not _must_refuse(shell, value), f"{shell} printed a value it cannot carry: {value!r}"
    return out


# (shell, how to evaluate the file "env", exact: whether the value survives byte for byte)
FORMS = {
    "bash": [('eval "$(cat env)"', True), ("eval $(cat env)", "no-runs"), (". ./env", True)],
    "dash": [('eval "$(cat env)"', True), ("eval $(cat env)", "no-runs"), (". ./env", True)],
    "zsh": [('eval "$(cat env)"', True), ("eval $(cat env)", False), ("source ./env", True)],
    "fish": [("eval (cat env)", True), ("source env", True)],
    "tcsh": [("source env", True), ("eval `cat env`", True), ('eval "`cat env`"', True)],
}
PRINT = {
    "bash": 'printf "%s\\0%s" "$DOCKER_HOST" "$DOCKER_CERT_PATH" > out',
    "dash": 'printf "%s\\0%s" "$DOCKER_HOST" "$DOCKER_CERT_PATH" > out',
    "zsh": 'printf "%s\\0%s" "$DOCKER_HOST" "$DOCKER_CERT_PATH" > out',
    "fish": 'printf "%s\\0%s" "$DOCKER_HOST" "$DOCKER_CERT_PATH" > out',
    "tcsh": 'printf "%s\\0%s" "$DOCKER_HOST:q" "$DOCKER_CERT_PATH:q" > out',
}
ARGV = {"bash": ["bash", "-c"], "dash": ["dash", "-c"], "zsh": ["zsh", "-f", "-c"],
        "fish": ["fish", "--no-config", "-c"], "tcsh": ["tcsh", "-f", "-c"]}
DIALECT = {"bash": "bash", "dash": "sh", "zsh": "zsh", "fish": "fish", "tcsh": "tcsh"}


@pytest.mark.parametrize("shell", list(FORMS))
def test_real_shells_never_run_payloads_and_keep_values_exact(shell, tmp_path, counts):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed (.ci/install-deps installs it)")
    failures = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["HOME"] = str(tmp_path)
    for i, value in enumerate(HOSTILE):
        out = _render(DIALECT[shell], value, counts)
        if out is None:
            continue
        for j, (form, exact) in enumerate(FORMS[shell]):
            work = tmp_path / f"v{i}-{j}"
            work.mkdir()
            (work / "env").write_text(out)
            if shell == "tcsh":  # tcsh's printf needs the values as words: setenv's are read via $VAR:q
                script = f"{form}; {PRINT[shell]}"
            else:
                script = f"{form}\n{PRINT[shell]}"
            r = subprocess.run(ARGV[shell] + [script], cwd=work, env=env, capture_output=True,
                               timeout=30, errors="replace")
            counts["evaluations"] += 1
            leftover = sorted(set(os.listdir(work)) - {"env", "out"})
            if leftover:
                counts["injections"] += 1
                failures.append(f"INJECTION {shell} [{form}] {value!r}: created {leftover}; {r.stderr[:200]}")
                continue
            if exact is False:
                continue
            if exact == "no-runs" and ("  " in value or value != value.strip() or any(c in value for c in "*?[")):
                continue  # unquoted $(...) splits and globs: docker-machine's hint, not exact by design
            got = (work / "out").read_bytes().decode("utf-8", "replace") if (work / "out").exists() else None
            if got != f"{value}\0{value}":
                counts["wrong_values"] += 1
                failures.append(f"WRONG {shell} [{form}] {value!r}: got {got!r}; {r.stderr[:200]}")
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


# --------------------------------------------------------------------------- PowerShell, cmd: grammar checks

_PS_DQ = "\"\u201c\u201d\u201e"
_PS_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
               "v": "\v", "u": None}


def _ps_parse_value(text: str) -> str:
    """Decode PowerShell's expandable string starting at text[0] (a double quote of any
    kind); fails on interpolation, unknown escapes or anything after the closing quote."""
    assert text[0] in _PS_DQ, text
    out = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "`":
            nxt = text[i + 1]
            assert nxt not in _PS_ESCAPES, f"escape letter `{nxt} would change the value"
            out.append(nxt)
            i += 2
            continue
        if c == "$":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            assert not (nxt.isalnum() or nxt in "_({?^$:"), f"interpolation at {text[i:i+5]!r}"
            out.append(c)
            i += 1
            continue
        if c in _PS_DQ:
            if i + 1 < len(text) and text[i + 1] in _PS_DQ:  # a doubled quote is a literal quote
                out.append(c)
                i += 2
                continue
            assert text[i + 1:] == "", f"text after the string: {text[i + 1:]!r}"
            return "".join(out)
        assert c not in "\r\n\x85\u2028\u2029", "line break inside the string"
        out.append(c)
        i += 1
    raise AssertionError("string not closed")


def _check_powershell(out: str, value: str) -> None:
    lines = out.split("\n")
    assert lines[-1] == ""
    body, hint = lines[:-3], lines[-3:-1]
    for line in hint:
        assert line.startswith("# ") and "\r" not in line
    got = {}
    for line in body:
        assert line.startswith("$Env:"), line
        name, rest = line[5:].split(" = ", 1)
        assert name.replace("_", "").isalnum()
        got[name] = _ps_parse_value(rest)
    assert got["DOCKER_HOST"] == value and got["DOCKER_CERT_PATH"] == value


def _check_cmd(out: str, value: str) -> None:
    lines = out.split("\n")
    assert lines[-1] == ""
    body, hint = lines[:-3], lines[-3:-1]
    for line in hint:
        assert line.startswith("REM ") and "\r" not in line
        echoed = line.split("IN ('", 1)[-1].rsplit("') DO", 1)[0] if "IN ('" in line else ""
        assert not set(echoed) & set('%!^&|<>'), f"hostile characters reach a REM line: {line!r}"
    got = {}
    for line in body:
        assert line.startswith("SET "), line
        rest = line[4:]
        if rest.startswith('"'):
            assert rest.endswith('"') and rest.count('"') == 2, f"quotes: {line!r}"
            name, val = rest[1:-1].split("=", 1)
            assert not set(val) & set('%!'), line
        else:
            name, val = rest.split("=", 1)
            assert not set(val) & set('"%!^&|<>()'), f"unquoted special: {line!r}"
        assert name.replace("_", "").isalnum()
        got[name] = val
    assert got["DOCKER_HOST"] == value and got["DOCKER_CERT_PATH"] == value


@pytest.mark.parametrize("shell,check", [("powershell", _check_powershell), ("cmd", _check_cmd)])
def test_powershell_and_cmd_output_parses_to_exactly_the_value(shell, check, counts):
    failures = []
    for value in HOSTILE:
        out = _render(shell, value, counts)
        if out is None:
            continue
        counts["evaluations"] += 1
        try:
            check(out, value)
        except AssertionError as e:
            counts["injections"] += 1
            failures.append(f"{shell} {value!r}: {e}\n{out}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} failures)"


def test_emacs_output_is_one_elisp_form_per_line(counts):
    for value in HOSTILE:
        out = _render("emacs", value, counts)
        if out is None:
            continue
        for line in out.split("\n")[:-3]:
            assert line.startswith('(setenv "') and line.endswith('")')
            inner = line[len('(setenv "'):-2]
            name, _, quoted = inner.partition('" "')
            decoded, k = [], 0
            while k < len(quoted):
                if quoted[k] == "\\":
                    decoded.append(quoted[k + 1])
                    k += 2
                else:
                    assert quoted[k] != '"', line
                    decoded.append(quoted[k])
                    k += 1
            if name in ("DOCKER_HOST", "DOCKER_CERT_PATH"):
                assert "".join(decoded) == value


def test_corpus_is_big_enough():
    assert len(HOSTILE) >= 60 and len(set(HOSTILE)) == len(HOSTILE)
