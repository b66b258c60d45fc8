"""Client configuration: `machine env` output per shell, and docker CLI contexts.

`machine env` output is byte-compatible with docker-machine 0.16.2
(commands/env.go: `envTmpl`, `shellCfgSet`, `shellCfgUnset`, `findNoProxyFromEnv`
and `EnvUsageHintGenerator.GenerateUsageHint`), so scripts that parse or eval it
keep working. The few places where we differ are places where docker-machine's
output was broken, and only for inputs that broke it:

* values are escaped for the target shell's quoting when they hold characters
  that would end the quoted string or be expanded (`"`, `$`, backquote, ...);
  docker-machine pasted them in raw;
* `--unset --no-proxy` prints `unset NO_PROXY`; docker-machine glued the
  current value onto the variable name (`unset NO_PROXY10.0.0.1`);
* `--no-proxy` checks the host IP against the comma-separated list entries;
  docker-machine did a substring test, so 10.0.0.1 was "already in" 10.0.0.10;
* each value is quoted for the target shell's grammar (tcsh: single quotes with
  `!` outside them; cmd: `SET "NAME=value"` where `&|<>^()` occur; PowerShell:
  backquote before `$`, backquote and every double quote it knows, typographic
  ones included), and a value no form can carry safely (a control character
  such as newline or NUL anywhere; `"`, `%` or `!` for cmd; `{`, `}` or a run of
  spaces for tcsh's ``eval `...` ``) is refused with one line;
* the usage hint quotes odd arguments for the shell and prints control
  characters in them as `?`, so nothing escapes the comment.

Docker contexts are written straight into the docker CLI's own context store
(`$DOCKER_CONFIG` or `~/.docker`): `contexts/meta/<sha256(name)>/meta.json`
and `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`, in the same form and
with the same modes `docker context create` uses, so no docker binary is needed.
The contexts we write carry `"MachineManaged": true` (and the store path) in
their Metadata; a context without that mark is the user's and is never
overwritten, removed or switched to (`ForeignContext`, one line saying how to
pick another name). `owned_context(name)` says whether a context is ours.

This module is imported by `machine env`: keep module-level imports to the stdlib.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MachineError, NotFound, UsageError
from .fsutil import PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE, atomic_write, ensure_dir, read_small_file

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence

__all__ = [
    "SHELLS",
    "detect_shell",
    "render_env",
    "docker_config_dir",
    "write_context",
    "remove_context",
    "use_context",
    "current_context",
    "context_exists",
    "owned_context",
    "context_owner",
    "check_context_free",
    "ForeignContext",
    "MANAGED_KEY",
]

SHELLS = ("bash", "sh", "zsh", "fish", "powershell", "cmd", "tcsh", "emacs")

# ---------------------------------------------------------------------------
# Shell detection
# ---------------------------------------------------------------------------

# Names shellingham (or $SHELL) may report, mapped to the output dialect we print.
# Bourne-family shells all take the default `export NAME="value"` form, which is
# what docker-machine printed for any shell it did not know.
_SHELL_ALIASES = {
    "bash": "bash",
    "sh": "sh",
    "zsh": "zsh",
    "dash": "sh",
    "ash": "sh",
    "ksh": "sh",
    "mksh": "sh",
    "yash": "sh",
    "busybox": "sh",
    "fish": "fish",
    "powershell": "powershell",
    "pwsh": "powershell",
    "cmd": "cmd",
    "tcsh": "tcsh",
    "csh": "tcsh",
    "emacs": "emacs",
}


def _normalize_shell(name: str) -> str | None:
    base = os.path.basename(name.strip()).lower()
    for ext in (".exe", ".com"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    if base.startswith("-"):  # login shells show up as "-bash"
        base = base[1:]
    return _SHELL_ALIASES.get(base)


def _unknown_shell(name: str) -> UsageError:
    return UsageError(
        f"unsupported shell {name!r}",
        "pass --shell with one of: " + ", ".join(SHELLS),
    )


def detect_shell() -> str:
    """The user's shell, as one of SHELLS.

    The parent processes first (shellingham's rules, machine.shelldetect), then the
    basename of $SHELL, else "bash". A shell we cannot write for raises UsageError naming --shell.
    """
    found: str | None = None
    try:
        from .shelldetect import detect_shell as parent_shell  # only when --shell is not given

        found = parent_shell()[0]
    except Exception:  # no shell among the parents, unreadable /proc, RuntimeError on odd platforms
        found = None
    if not found:
        found = os.path.basename(os.environ.get("SHELL", "").strip())
    if not found:
        return "bash"
    shell = _normalize_shell(found)
    if shell is None:
        raise _unknown_shell(found)
    return shell


# ---------------------------------------------------------------------------
# `machine env`
# ---------------------------------------------------------------------------

# (prefix, delimiter, suffix) per shell, from docker-machine 0.16.2 commands/env.go.
_SET_FORMS = {
    "fish": ("set -gx ", ' "', '";\n'),
    "powershell": ("$Env:", ' = "', '"\n'),
    "cmd": ("SET ", "=", "\n"),
    "tcsh": ("setenv ", ' "', '";\n'),
    "emacs": ('(setenv "', '" "', '")\n'),
    "default": ("export ", '="', '"\n'),
}
_UNSET_FORMS = {
    "fish": ("set -e ", "", ";\n"),
    "powershell": ("Remove-Item Env:\\\\", "", "\n"),  # two literal backslashes, as Go's `Env:\\`
    "cmd": ("SET ", "=", "\n"),
    "emacs": ('(setenv "', '" nil', ")\n"),
    "tcsh": ("unsetenv ", "", ";\n"),
    "default": ("unset ", "", "\n"),
}


def _escape_backslash_quoted(value: str, specials: str, escapable: str) -> str:
    """Escape for a double-quoted string where backslash escapes only `escapable`.

    A backslash before any other character is literal in these shells, so it is
    left alone (Windows paths come out exactly as docker-machine printed them).
    """
    out = []
    n = len(value)
    for i, c in enumerate(value):
        if c in specials:
            out.append("\\" + c)
        elif c == "\\" and (i + 1 == n or value[i + 1] in escapable):
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)


# Characters that need no quoting in any shell's form (docker-machine's output
# is kept byte for byte for values made of these, spaces included).
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./\\ -]*")
# Line breaks and other control characters: no shell form carries them safely
# through `eval $(...)`, FOR /f or Invoke-Expression, so they are refused.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_PS_DOUBLE_QUOTES = '"\u201c\u201d\u201e'  # " “ ” „: all end a PowerShell "string"
_CMD_SPECIAL = set('&|<>^()')
_CMD_REFUSED = set('"%!')


def _refuse(shell: str, name: str, value: str, what: str, hint: str) -> UsageError:
    shown = _CONTROL.sub("?", value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return UsageError(f"cannot print {name}={shown!r} for {shell}: the value contains {what}", hint)


def _check_value(shell: str, name: str, value: str) -> None:
    m = _CONTROL.search(value)
    if m:
        c = m.group()
        what = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}.get(
            c, f"the control character U+{ord(c):04X}")
        raise _refuse(shell, name, value, what,
                      "no shell can set it safely; fix the machine's URL or the store path")
    if shell == "cmd":
        bad = sorted(set(value) & _CMD_REFUSED)
        if bad:
            raise _refuse(shell, name, value, " and ".join(repr(c) for c in bad),
                          "cmd cannot quote these safely; use --shell powershell, or a path without them")
    if shell == "tcsh":
        if "{" in value or "}" in value:
            raise _refuse(shell, name, value, "a brace", "tcsh's eval `...` expands braces; use another "
                          "shell's --shell, or a path without braces")
        if "  " in value:
            raise _refuse(shell, name, value, "a run of spaces", "tcsh's eval `...` collapses them; use a "
                          "path without repeated spaces")


def _tcsh_single(value: str) -> str:
    # In tcsh single quotes everything is literal except `'` (closes) and `!` (history,
    # even there): both are written outside the quotes, backslash-escaped.
    return "'" + value.replace("'", "'\\''").replace("!", "'\\!'") + "'"


def _quote(shell: str, value: str) -> tuple[str, str]:
    """(text between the set form's delimiter and suffix, delimiter override or '')."""
    if shell in ("bash", "sh", "zsh"):
        # Inside "...": $ ` " \ and newline are special (POSIX 2.2.3).
        return _escape_backslash_quoted(value, '"$`', '"$`\\\n'), ""
    if shell == "fish":
        # Inside "...": only \" \$ \\ and \newline are escapes.
        return _escape_backslash_quoted(value, '"$', '"$\\\n'), ""
    if shell == "powershell":
        # Inside "...": the escape character is the backquote; $ interpolates; any of
        # " “ ” „ ends the string. A backquote before these is never an escape letter.
        return "".join("`" + c if c in "`$" + _PS_DOUBLE_QUOTES else c for c in value), ""
    if shell == "emacs":
        # An elisp string literal: every backslash starts an escape.
        return value.replace("\\", "\\\\").replace('"', '\\"'), ""
    if shell == "cmd":
        return value, ""
    if shell == "tcsh":
        if _PLAIN.fullmatch(value):
            return value, ""
        return _tcsh_single(value), "tcsh-single"
    return value, ""


def _escape(shell: str, value: str) -> str:
    return _quote(shell, value)[0]


def _set_line(shell: str, form: str, name: str, value: str) -> str:
    _check_value(shell, name, value)
    prefix, delim, suffix = _SET_FORMS[form]
    if shell == "cmd" and set(value) & _CMD_SPECIAL:
        # SET "NAME=value": the quotes keep & | < > ^ ( ) literal; nothing follows them
        return f'SET "{name}={value}"\n'
    quoted, how = _quote(shell, value)
    if how == "tcsh-single":
        return f"setenv {name} {quoted};\n"
    return f"{prefix}{name}{delim}{quoted}{suffix}"


def _host_ip(docker_host: str) -> str:
    """The host part of tcp://HOST:PORT (brackets dropped for IPv6)."""
    rest = docker_host.split("://", 1)[-1]
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    if rest.count(":") == 1:
        return rest.rsplit(":", 1)[0]
    return rest


def _find_no_proxy(environ: Mapping[str, str]) -> tuple[str, str]:
    # docker-machine findNoProxyFromEnv: lower-case no_proxy if set and non-empty,
    # otherwise NO_PROXY.
    value = environ.get("no_proxy", "")
    if value:
        return "no_proxy", value
    return "NO_PROXY", environ.get("NO_PROXY", "")


def _hint_arg(shell: str, arg: str) -> str:
    """One argument of the echoed command line, quoted for the shell where it is odd.

    Control characters become "?" (a newline must never end the comment line);
    the hint is advice to read, so a lossy rendering of a hostile argument is fine.
    """
    arg = _CONTROL.sub("?", str(arg))
    if _PLAIN.fullmatch(arg) and " " not in arg:
        return arg
    if shell in ("bash", "sh", "zsh", "emacs"):
        return "'" + arg.replace("'", "'\\''") + "'"
    if shell == "fish":
        return "'" + arg.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if shell == "powershell":
        return "'" + "".join(c * 2 if c in "'\u2018\u2019\u201a\u201b" else c for c in arg) + "'"
    if shell == "cmd":
        return '"' + "".join("?" if c in '"%!^&|<>' else c for c in arg) + '"'
    if shell == "tcsh":
        return _tcsh_single("".join("?" if c in "{}" else c for c in arg).replace("  ", " ?"))
    return arg


def _usage_hint(shell: str, command_line: Sequence[str]) -> str:
    # docker-machine EnvUsageHintGenerator.GenerateUsageHint (0.16.2), for ordinary
    # arguments byte for byte; odd ones quoted (see _hint_arg).
    args = [str(a) for a in command_line]
    plain_first = bool(args) and not _CONTROL.search(args[0]) and bool(_PLAIN.fullmatch(args[0]))
    if args and plain_first and (" " in args[0] or "\\" in args[0]):
        first = f'"{args[0]}"'  # docker-machine's own rule for the program path
    elif args:
        first = _hint_arg(shell, args[0])
    args = ([first] if args else []) + [_hint_arg(shell, a) for a in args[1:]]
    line = " ".join(args)
    comment = "#"
    if shell == "fish":
        cmd = f"eval ({line})"
    elif shell == "powershell":
        cmd = f"& {line} | Invoke-Expression"
    elif shell == "cmd":
        cmd = f"\t@FOR /f \"tokens=*\" %i IN ('{line}') DO @%i"
        comment = "REM"
    elif shell == "emacs":
        elisp = line.replace("\\", "\\\\").replace('"', '\\"')
        cmd = f'(with-temp-buffer (shell-command "{elisp}" (current-buffer)) (eval-buffer))'
        comment = ";;"
    elif shell == "tcsh":
        cmd = f"eval `{line}`"
        comment = ":"
        if not all(_PLAIN.fullmatch(a.strip('"')) for a in args):
            # tcsh runs a `:` line's substitutions: make an odd one inert
            cmd = _tcsh_single(cmd.replace("{", "?").replace("}", "?"))
    else:
        cmd = f"eval $({line})"
    # The space after "shell:" is docker-machine's; kept for byte compatibility.
    return f"{comment} Run this command to configure your shell: \n{comment} {cmd}\n"


def render_env(
    *,
    shell: str,
    machine_name: str,
    docker_host: str,
    cert_path: str,
    tls_verify: bool = True,
    no_proxy: bool = False,
    environ: Mapping[str, str] | None = None,
    unset: bool = False,
    command_line: Sequence[str] = ("machine", "env", "NAME"),
    ip: str | None = None,
    windows: bool | None = None,
) -> str:
    """The text `machine env` prints, as docker-machine 0.16.2 printed it.

    `command_line` is shown in the closing usage hint (docker-machine used
    os.Args). `ip` is the address added to NO_PROXY with `no_proxy`; by default
    the host part of `docker_host`. `environ` supplies the current
    no_proxy/NO_PROXY (default os.environ). `windows` adds
    COMPOSE_CONVERT_WINDOWS_PATHS=true as docker-machine did on Windows (default:
    when running on Windows). `tls_verify=False` leaves DOCKER_TLS_VERIFY out.
    With `unset`, the machine fields are ignored and the unset lines are printed.
    """
    shell = shell.lower()
    if shell not in SHELLS:
        raise _unknown_shell(shell)
    if environ is None:
        environ = os.environ
    if windows is None:
        windows = sys.platform == "win32"
    form = shell if shell in _SET_FORMS else "default"

    if unset:
        prefix, delim, suffix = _UNSET_FORMS[form]
        names = ["DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"]
        if no_proxy:
            # docker-machine printed the current value after the name here
            # ("unset NO_PROXY10.0.0.1"); the name alone is what it meant.
            names.append(_find_no_proxy(environ)[0])
        out = "".join(f"{prefix}{n}{delim}{suffix}" for n in names)
        return out + _usage_hint(shell, command_line)

    lines: list[tuple[str, str]] = []  # (name, value), in docker-machine's order
    if tls_verify:
        lines.append(("DOCKER_TLS_VERIFY", "1"))
    lines.append(("DOCKER_HOST", docker_host))
    lines.append(("DOCKER_CERT_PATH", cert_path))
    lines.append(("DOCKER_MACHINE_NAME", machine_name))
    if windows:
        lines.append(("COMPOSE_CONVERT_WINDOWS_PATHS", "true"))
    if no_proxy:
        host_ip = ip if ip is not None else _host_ip(docker_host)
        var, value = _find_no_proxy(environ)
        entries = [e.strip() for e in value.split(",")]
        if not value:
            value = host_ip
        elif host_ip not in entries:
            value = f"{value},{host_ip}"
        lines.append((var, value))
    out = "".join(_set_line(shell, form, n, str(v)) for n, v in lines)
    return out + _usage_hint(shell, command_line)


# ---------------------------------------------------------------------------
# Docker CLI contexts
# ---------------------------------------------------------------------------

# The docker CLI's rule for context names (cli/command/context: validateContextName).
_CONTEXT_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"  # compiled on first use (re caches it)
_DEFAULT_CONTEXT = "default"
_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
_META_DIR_MODE = 0o755  # what `docker context create` uses for contexts/ and meta/


def docker_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$DOCKER_CONFIG, else ~/.docker (the docker CLI's own rule)."""
    env = os.environ if environ is None else environ
    value = env.get("DOCKER_CONFIG", "")
    if value:
        return Path(value).expanduser()
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def _config_dir(config_dir: Path | str | None) -> Path:
    return Path(config_dir) if config_dir is not None else docker_config_dir()


def _context_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def _check_name(name: str) -> None:
    if name == _DEFAULT_CONTEXT:
        raise UsageError(f'"{name}" is a reserved docker context name', "choose another name")
    if not isinstance(name, str) or not re.fullmatch(_CONTEXT_NAME, name):
        raise UsageError(
            f"{name!r} is not a valid docker context name",
            "docker requires names matching " + _CONTEXT_NAME,
        )


def _meta_dir(cfg: Path, name: str) -> Path:
    return cfg / "contexts" / "meta" / _context_id(name)


def _tls_dir(cfg: Path, name: str) -> Path:
    return cfg / "contexts" / "tls" / _context_id(name)


#: the Metadata key that marks a context as written by Machine (value: true)
MANAGED_KEY = "MachineManaged"
#: the Metadata key holding the store path of the machine the context belongs to
STORE_KEY = "MachineStorePath"
_MAX_META_BYTES = 1 << 20


class ForeignContext(MachineError):
    """A docker context of that name exists and was not written by Machine."""


def _foreign(name: str, verb: str, cfg: Path, why: str = "") -> ForeignContext:
    return ForeignContext(
        f"docker context {name!r} was not created by Machine{why}; refusing to {verb} it",
        "give the machine another name, or remove the context yourself "
        f"(docker context rm {name}) if you no longer need it",
    )


def _read_meta(cfg: Path, name: str) -> dict | None:
    """The context's meta.json as a dict; None when there is none; {} when unreadable."""
    path = _meta_dir(cfg, name) / "meta.json"
    if not os.path.lexists(path):
        return None
    try:
        meta = json.loads(read_small_file(path, _MAX_META_BYTES))
    except (OSError, ValueError):
        return {}  # unreadable, garbled, a FIFO or a folder: certainly not a context we wrote
    return meta if isinstance(meta, dict) else {}


def context_owner(name: str, config_dir: Path | None = None, *, store_path: str | os.PathLike | None = None) -> str:
    """"absent", "ours" or "foreign" for docker context `name`.

    Ours: meta.json exists, its Name is `name`, its Metadata has MachineManaged
    true and, when both it and `store_path` name a store, the same store. A TLS
    folder without meta.json (a half-removed context) counts as ours to clean up
    only when nothing else claims it: "absent". "default" is always foreign.
    """
    if name == _DEFAULT_CONTEXT:
        return "foreign"
    if not isinstance(name, str) or not name:
        return "absent"
    cfg = _config_dir(config_dir)
    meta = _read_meta(cfg, name)
    if meta is None:
        return "absent"
    md = meta.get("Metadata")
    if meta.get("Name") != name or not isinstance(md, dict) or md.get(MANAGED_KEY) is not True:
        return "foreign"
    if store_path is not None:
        recorded = md.get(STORE_KEY)
        if isinstance(recorded, str) and recorded and _same_path(recorded, store_path) is False:
            return "foreign"
    return "ours"


def _same_path(a, b) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def owned_context(name: str, config_dir: Path | None = None, *, store_path: str | os.PathLike | None = None) -> bool:
    """True if docker context `name` exists and was written by Machine (for this store,
    when `store_path` is given)."""
    return context_owner(name, config_dir, store_path=store_path) == "ours"


def check_context_free(name: str, config_dir: Path | None = None, *,
                       store_path: str | os.PathLike | None = None) -> None:
    """Raise ForeignContext (one line, with how to choose another name) if a context
    `name` exists that Machine may not overwrite; call it before creating anything."""
    _check_name(name)
    cfg = _config_dir(config_dir)
    owner = context_owner(name, cfg, store_path=store_path)
    if owner == "foreign":
        md = (_read_meta(cfg, name) or {}).get("Metadata")
        other = md.get(STORE_KEY) if isinstance(md, dict) and md.get(MANAGED_KEY) is True else None
        why = f" for this store (it belongs to the store at {other})" if other else ""
        raise _foreign(name, "overwrite", cfg, why)


def write_context(
    name: str,
    *,
    docker_host: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    description: str = "",
    config_dir: Path | None = None,
    store_path: str | os.PathLike | None = None,
) -> None:
    """Create or replace docker context `name` pointing at `docker_host` with mutual TLS.

    Idempotent. Each file is written atomically; the TLS material is written
    before meta.json, so the context never appears without its certificates.
    An empty PEM argument leaves that file out. The context is marked as ours
    (Metadata MachineManaged, and MachineStorePath when `store_path` is given);
    an existing context without that mark raises ForeignContext and is left as it is.
    Every folder we create gets an explicit mode (0700, or docker's 0755 for meta/).
    """
    _check_name(name)
    if not docker_host:
        raise UsageError("docker context needs a docker host URL", "e.g. tcp://HOST:2376")
    cfg = _config_dir(config_dir)
    if not _legacy_ours(cfg, name, ca_pem, key_pem):
        check_context_free(name, cfg, store_path=store_path)
    ensure_dir(cfg, PRIVATE_DIR)

    tls = _tls_dir(cfg, name)
    material = dict(zip(_TLS_FILES, (ca_pem, cert_pem, key_pem)))
    if any(material.values()):
        # Each level with the mode the docker CLI gives it (parents=True alone would
        # leave the intermediate folders at the umask default).
        ensure_dir(cfg / "contexts", _META_DIR_MODE)
        ensure_dir(cfg / "contexts" / "tls", PRIVATE_DIR)
        ensure_dir(tls, PRIVATE_DIR)
        endpoint_dir = ensure_dir(tls / "docker", PRIVATE_DIR)
        for fname, data in material.items():
            path = endpoint_dir / fname
            if data:
                atomic_write(path, data, PRIVATE_FILE)
            else:
                _unlink(path)
    else:
        _rmtree(tls)

    metadata: dict = {"Description": description} if description else {}
    metadata[MANAGED_KEY] = True
    if store_path is not None:
        metadata[STORE_KEY] = os.fspath(store_path)
    meta = {
        "Name": name,
        "Metadata": metadata,
        "Endpoints": {"docker": {"Host": docker_host, "SkipTLSVerify": False}},
    }
    meta_dir = _meta_dir(cfg, name)
    ensure_dir(cfg / "contexts", _META_DIR_MODE)
    ensure_dir(cfg / "contexts" / "meta", _META_DIR_MODE)
    ensure_dir(meta_dir, _META_DIR_MODE)
    # Compact, like the docker CLI's own json.Marshal output.
    data = json.dumps(meta, separators=(",", ":"), ensure_ascii=False)
    atomic_write(meta_dir / "meta.json", data, PUBLIC_FILE)


def _legacy_ours(cfg: Path, name: str, ca_pem: bytes, key_pem: bytes) -> bool:
    """An unmarked context written by a Machine from before the mark: it holds this
    very CA and client key (only Machine's store has that key), so rewriting it with
    the same material and marking it loses nothing of the user's."""
    if not (ca_pem and key_pem) or context_owner(name, cfg) != "foreign":
        return False
    md = (_read_meta(cfg, name) or {}).get("Metadata")
    if isinstance(md, dict) and MANAGED_KEY in md:
        return False  # marked by us for another store, or forged: not legacy
    tls = _tls_dir(cfg, name) / "docker"
    try:
        return (read_small_file(tls / "key.pem", _MAX_META_BYTES) == key_pem
                and read_small_file(tls / "ca.pem", _MAX_META_BYTES) == ca_pem)
    except (OSError, ValueError):
        return False


def context_exists(name: str, config_dir: Path | None = None) -> bool:
    """True if docker context `name` exists, ours or not ("default" always does)."""
    if name == _DEFAULT_CONTEXT:
        return True
    if not isinstance(name, str) or not name:
        return False
    return os.path.lexists(_meta_dir(_config_dir(config_dir), name) / "meta.json")


def remove_context(name: str, config_dir: Path | None = None, *,
                   store_path: str | os.PathLike | None = None, missing_ok_if_foreign: bool = False) -> bool:
    """Remove docker context `name` if Machine wrote it; True if there was something to remove.

    Idempotent. A context without our mark raises ForeignContext and is left
    untouched, and so is config.json (with `missing_ok_if_foreign=True` it is
    left alone silently and False returned: what `rm` wants). If the context was
    current, config.json goes back to the default context (as `docker context rm`
    does) only after it is confirmed ours.
    """
    if name == _DEFAULT_CONTEXT:
        raise UsageError('the "default" docker context cannot be removed')
    cfg = _config_dir(config_dir)
    owner = context_owner(name, cfg, store_path=store_path)
    if owner == "foreign":
        if missing_ok_if_foreign:
            return False
        raise _foreign(name, "remove", cfg)
    if owner == "ours":
        try:
            if current_context(cfg) == name:
                use_context(_DEFAULT_CONTEXT, cfg)
        except MachineError:
            pass  # an unreadable config.json is the user's; removing the context still works
    removed = False
    # TLS material first, meta.json last: a removal killed half-way leaves a marked
    # context that context_exists() still reports, so the next `rm` finishes it. A TLS
    # folder with no meta.json at all goes too: nothing else can own a folder named
    # after this context's hash without a meta.json.
    for d in (_tls_dir(cfg, name), _meta_dir(cfg, name)):
        removed = _rmtree(d) or removed
    return removed


def use_context(name: str, config_dir: Path | None = None, *, store_path: str | os.PathLike | None = None,
                allow_foreign: bool = False) -> None:
    """Make `name` the docker CLI's current context (config.json "currentContext").

    Every other key of config.json is kept, and its mode (0600 for a new file).
    "default" removes the key, as `docker context use default` does. A context
    Machine did not write raises ForeignContext unless `allow_foreign`.
    """
    cfg = _config_dir(config_dir)
    if name != _DEFAULT_CONTEXT:
        owner = context_owner(name, cfg, store_path=store_path)
        if owner == "absent":
            raise NotFound(
                f"docker context {name!r} does not exist",
                f"looked in {cfg / 'contexts' / 'meta'}",
            )
        if owner == "foreign" and not allow_foreign:
            raise _foreign(name, "switch to", cfg)
    path = _config_file(cfg)
    config, mode = _read_config(path)
    if name == _DEFAULT_CONTEXT:
        if "currentContext" not in config:
            return
        del config["currentContext"]
    else:
        if config.get("currentContext") == name:
            return
        config["currentContext"] = name
    if mode is None:
        ensure_dir(path.parent, PRIVATE_DIR)
        mode = PRIVATE_FILE
    # The docker CLI writes config.json tab-indented without a final newline.
    atomic_write(path, json.dumps(config, indent="\t", ensure_ascii=False), mode)


def current_context(config_dir: Path | None = None) -> str | None:
    """The "currentContext" of config.json, or None when it is not set (default).

    DOCKER_CONTEXT and DOCKER_HOST in the environment override this for the
    docker CLI; that is the caller's business.
    """
    config, _ = _read_config(_config_file(_config_dir(config_dir)))
    value = config.get("currentContext")
    return value if isinstance(value, str) and value else None


def _config_file(cfg: Path) -> Path:
    path = cfg / "config.json"
    # config.json is sometimes a symlink into a dotfiles repo: write through it.
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _read_config(path: Path) -> tuple[dict, int | None]:
    """(contents, mode) of config.json; ({}, None) when it does not exist."""
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return {}, None
    if not raw.strip():
        return {}, mode
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise MachineError(
            f"cannot read docker config {path}: {e}",
            "fix or remove the file; Machine will not overwrite it",
        ) from None
    if not isinstance(config, dict):
        raise MachineError(
            f"cannot read docker config {path}: not a JSON object",
            "fix or remove the file; Machine will not overwrite it",
        )
    return config, mode


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _rmtree(path: Path) -> bool:
    if not path.exists() and not path.is_symlink():
        return False
    import shutil

    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
    return True
