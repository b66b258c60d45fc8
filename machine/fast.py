"""The light path: read-only verbs on one machine, answered without click.

`machine env`, `config`, `url`, `ip`, `status`, `active`, `inspect`, `version` and `ls -q`
run in shell prompts, `eval` lines and CI loops (GitLab Runner calls `config`, `url`, `ip`
and `status` for every machine it manages), where the start-up of the full CLI (click, the
API facade, the driver registry through importlib.metadata) is most of the time spent.
This module answers them with the store's own code (machine.store, machine.model,
machine.clientconfig, the driver's own class) and nothing else.

The rule: the output and the exit code are those of the full CLI, byte for byte
(tests/unit/test_fastpath.py runs both paths over a table of inputs). Whatever this
path is not sure it answers identically — `--help`, an option it does not know, a
global flag it does not handle, a driver it would have to find among every installed
package, an error it did not raise itself — it leaves to the full CLI, having printed
nothing: `run()` returns None and the caller goes on with click. Everything is computed
before the first byte is written, so falling through is always possible.

MACHINE_NO_FAST=1 turns this path off (the full CLI answers everything).

The read-only answers themselves are machine.readonly.StoreReader's, the same code the full
API runs; this module only parses, picks drivers without importlib.metadata, and gives up
where an answer would need a heavy import.
"""
from __future__ import annotations

import os
import sys

# Imported by every run of `machine`: keep module-level imports to what the parsing needs.

_FLAG, _VALUE, _MULTI, _NO = "flag", "value", "multi", "no"

# Global options of the click group (machine/cli/main.py), before the verb.
_GLOBAL = {
    "-s": ("storage_path", _VALUE), "--storage-path": ("storage_path", _VALUE),
    "--tls-ca-cert": ("tls_ca_cert", _VALUE), "--tls-ca-key": ("tls_ca_key", _VALUE),
    "--tls-client-cert": ("tls_client_cert", _VALUE), "--tls-client-key": ("tls_client_key", _VALUE),
    "--github-api-token": ("github_api_token", _VALUE), "--bugsnag-api-token": ("bugsnag_api_token", _VALUE),
    "--native-ssh": ("native_ssh", _FLAG),
    "-v": ("version", _FLAG), "--version": ("version", _FLAG),
    # -D/--debug changes how errors look (tracebacks): the full CLI answers.
}
# Environment variables of flags whose values click validates (a bad one is an error there).
_FLAG_ENV = ("MACHINE_DEBUG", "MACHINE_NATIVE_SSH")


class _Fallback(Exception):
    """This invocation is the full CLI's to answer."""


class _Out:
    """What the command prints, kept until it is known to be complete."""

    def __init__(self):
        self.parts: list[tuple[bool, str]] = []

    def echo(self, text: str, nl: bool = True, err: bool = False) -> None:
        self.parts.append((err, text + "\n" if nl else text))

    def error(self, e, prefix: str = "") -> None:
        from .errors import error_line

        self.echo(error_line(e, prefix=prefix), err=True)

    def write(self) -> None:
        if any("\x1b" in text for _, text in self.parts):
            raise _Fallback  # click strips ANSI sequences when not writing to a terminal
        for err, text in self.parts:
            stream = sys.stderr if err else sys.stdout
            stream.write(text)
            stream.flush()


def run(argv: list[str] | None = None) -> int | None:
    """Answer `machine ARGV` on the light path; None when the full CLI must (nothing printed)."""
    if os.environ.get("MACHINE_NO_FAST"):
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    out = _Out()
    try:
        code = _dispatch(argv, out)
    except _Fallback:
        return None
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")  # as machine/cli/main.py
        return 130
    except Exception as e:
        from .errors import MachineError

        if not isinstance(e, MachineError) or type(e).__module__.startswith("machine.drivers"):
            return None  # not one of ours, or a driver's own: the full CLI words it
        out.error(e)
        code = 1  # docker-machine exits 1 on every error
    try:
        out.write()
    except _Fallback:
        return None
    except UnicodeEncodeError:  # raised before anything of that text was written
        return None
    except BrokenPipeError:
        return 141
    return code


def main() -> int:
    """The `machine` program: the light path, else the full CLI."""
    code = run()
    if code is None:
        from .cli.main import main as full

        code = full(sys.argv[1:])
    return code


# ---------------------------------------------------------------------------- parsing

def _parse(args: list[str], spec: dict, *, max_args: int) -> tuple[dict, list[str]]:
    """click's parsing for the simple cases; anything else is the full CLI's."""
    opts: dict = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
            dest, kind = spec.get(name, (None, _NO))
            if kind == _NO:
                raise _Fallback  # unknown option, --help, "--", clustered short flags, -sVALUE …
            if kind == _FLAG:
                if eq:
                    raise _Fallback
                opts[dest] = True
                continue
            if not eq:
                if i >= len(args) or args[i].startswith("-"):
                    raise _Fallback  # a missing value, or one click might read otherwise
                value = args[i]
                i += 1
            if kind == _MULTI:
                opts.setdefault(dest, []).append(value)
            else:
                opts[dest] = value
        else:
            positional.append(a)
    if len(positional) > max_args:
        raise _Fallback
    return opts, positional


def _parse_globals(argv: list[str]) -> tuple[dict, list[str]]:
    if any(os.environ.get(v) for v in _FLAG_ENV):
        raise _Fallback
    i = 0
    head = []
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        a = argv[i]
        head.append(a)
        i += 1
        name, eq, _ = a.partition("=") if a.startswith("--") else (a, "", "")
        if _GLOBAL.get(name, (None, _NO))[1] == _VALUE and not eq and i < len(argv):
            head.append(argv[i])
            i += 1
    opts, _ = _parse(head, _GLOBAL, max_args=0)
    return opts, argv[i:]


def _store_path(g: dict):
    # click: the flag, else $MACHINE_STORAGE_PATH when not empty, else None (the default store)
    return g["storage_path"] if "storage_path" in g else (os.environ.get("MACHINE_STORAGE_PATH") or None)


def _dispatch(argv: list[str], out: _Out) -> int:
    g, rest = _parse_globals(argv)
    if g.get("version"):
        from . import __version__

        out.echo(f"machine version {__version__}")
        return 0
    if not rest or rest[0] not in _VERBS:
        raise _Fallback
    verb, args = rest[0], rest[1:]
    if "-h" in args or "--help" in args:
        raise _Fallback
    return _VERBS[verb](_reader(_store_path(g)), args, out)


# ---------------------------------------------------------------------------- the API, read-only

def _reader(storage_path):
    """machine.readonly.StoreReader, giving up (to the full CLI) where it would import heavily."""
    from .readonly import StoreReader

    class LightReader(StoreReader):
        def driver_class(self, driver_name: str):
            return _driver_class(driver_name)

        def load_secrets(self, host) -> dict:
            if host.machine.credentials not in ("", "file"):
                raise _Fallback  # the OS keyring: not a light import
            return super().load_secrets(host)

        def peer_claims(self, name: str) -> list:
            raise _Fallback

        def cert_expiry_from_pem(self, path: str) -> str:
            raise _Fallback  # reading the PEM takes cryptography

    return LightReader(storage_path)


# ---------------------------------------------------------------------------- drivers

def _driver_class(name: str):
    """machine.driver.get_driver_class for the drivers of our own distribution, without
    importlib.metadata; any other case (a plugin's driver, an unknown name) is the full CLI's."""
    import importlib

    from .driver import Driver, _registered

    if name in _registered:
        return _registered[name]
    for ep_name, value in _own_driver_entry_points():
        if ep_name != name:
            continue
        module_name, _, attr = value.partition(":")
        if not _identifier_path(module_name) or not _identifier_path(attr):
            raise _Fallback
        try:
            import importlib.util

            if importlib.util.find_spec(module_name) is None:
                raise _Fallback
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError):
            raise _Fallback from None
        if not (isinstance(obj, type) and issubclass(obj, Driver)):
            raise _Fallback
        return obj
    raise _Fallback


def _identifier_path(s: str) -> bool:
    return bool(s) and all(p.isidentifier() for p in s.split("."))


def _own_driver_entry_points() -> list[tuple[str, str]]:
    """The "machine.drivers" entry points of the distribution importlib.metadata.distribution("machine")
    finds: the first `machine-*.dist-info` / `machine*.egg-info` folder along sys.path."""
    if any(hasattr(f, "find_distributions") and f.__name__ != "PathFinder"
           for f in (m if isinstance(m, type) else type(m) for m in sys.meta_path)):
        raise _Fallback  # another finder may know distributions
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.exists(root):
                raise _Fallback from None  # a zip file: importlib.metadata looks inside
            continue
        if root.lower().endswith(".egg"):
            raise _Fallback
        for child in children:
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            dist = low.rpartition(".")[0].partition("-")[0]
            if dist.replace(".", "_").replace("-", "_") != "machine":
                continue
            try:
                with open(os.path.join(root, child, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError:
                return []
            except OSError:
                raise _Fallback from None
            return _entry_points_in(text, "machine.drivers")
    return []


def _entry_points_in(text: str, group: str) -> list[tuple[str, str]]:
    # importlib.metadata's Sectioned.section_pairs
    out, section = [], None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section == group:
            if "=" not in line:
                raise _Fallback
            name, value = line.split("=", 1)
            out.append((name.strip(), value.strip()))
    return out


# ---------------------------------------------------------------------------- the verbs
# Each mirrors its click command in machine/cli/ (basic.py, env.py, ls.py).

def _name(positional: list[str]) -> str:
    return positional[0] if positional else "default"  # cli.common.default_name


def _env(api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"--shell": ("shell", _VALUE), "-u": ("unset", _FLAG), "--unset": ("unset", _FLAG),
                              "--no-proxy": ("no_proxy", _FLAG), "--swarm": ("swarm", _FLAG)}, max_args=1)
    from . import clientconfig
    from .errors import UsageError

    unset = opts.get("unset", False)
    if unset and pos:
        raise UsageError("Expected no machine name when the -u flag is present", "run: machine env -u")
    shell = opts.get("shell") or clientconfig.detect_shell()
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "machine"
    words = [a for a in sys.argv[1:]] if sys.argv[1:] else ["env", _name(pos)]
    out.echo(api.env(_name(pos), shell=shell, unset=unset, no_proxy=opts.get("no_proxy", False),
                     command_line=[_prog_name(prog)] + words), nl=False)
    return 0


def _prog_name(prog: str) -> str:
    # machine.cli.env._prog_name
    base = os.path.basename(prog)
    return "machine" if base in ("__main__.py", "-c", "machine") else prog


def _config(api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"--no-check": ("no_check", _FLAG)}, max_args=1)
    out.echo(api.config_flags(_name(pos), check=not opts.get("no_check")), nl=False)
    return 0


def _url(api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=1)
    out.echo(api.url(_name(pos)))
    return 0


def _ip(api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=10**6)
    from .errors import MachineError

    names = pos or ["default"]
    failed = 0
    for n in names:  # cli.common.for_each(..., what="getting the IP of")
        try:
            out.echo(api.ip(n))
        except MachineError as e:
            if type(e).__module__.startswith("machine.drivers"):
                raise _Fallback from None
            failed += 1
            out.error(e, prefix="" if len(names) == 1 else f"getting the IP of {n}: ")
    return 1 if failed else 0


def _status(api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=1)
    # for drivers that know their state without the network; the others ask with the full CLI
    driver = api.driver_for(api.load(_name(pos)), persist=False)
    if not driver.capabilities.local_state:
        raise _Fallback
    out.echo(str(driver.state()))
    return 0


def _active(api, args: list[str], out: _Out) -> int:
    opts, _ = _parse(args, {"-t": ("timeout", _VALUE), "--timeout": ("timeout", _VALUE)}, max_args=0)
    t = opts.get("timeout", "10").strip()
    if not (t.isdigit() and t.isascii()):
        raise _Fallback  # click's int conversion and its errors
    from .errors import MachineError

    name = api.active()
    if not name:
        raise MachineError("no active host found", "run: eval $(machine env NAME) or machine use NAME")
    out.echo(name)
    return 0


def _inspect(api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"-f": ("fmt", _VALUE), "--format": ("fmt", _VALUE)}, max_args=1)
    data = api.inspect(_name(pos))
    fmt = opts.get("fmt")
    if fmt:
        from .gotemplate import render

        out.echo(render(fmt, data))
    else:
        import json

        out.echo(json.dumps(data, indent=4))
    return 0


def _version(api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=0)  # with a NAME it asks the engine: the full CLI
    from . import __version__

    out.echo(f"machine version {__version__}")
    return 0


def _ls(api, args: list[str], out: _Out) -> int:
    opts, _ = _parse(args, {"-q": ("quiet", _FLAG), "--quiet": ("quiet", _FLAG),
                            "--filter": ("filters", _MULTI),
                            "-t": ("timeout", _VALUE), "--timeout": ("timeout", _VALUE)}, max_args=0)
    if not opts.get("quiet"):
        raise _Fallback  # the table probes every engine: no start-up saving worth a second copy
    timeout = opts.get("timeout", "10")
    try:
        t = float(timeout)
    except ValueError:
        raise _Fallback from None
    if not (0.001 <= t <= 86400.0):  # validate.seconds; also rejects nan
        raise _Fallback
    from .errors import MachineError
    from .readonly import name_match, parse_filters, row_matches

    filters = parse_filters(opts.get("filters", []))
    if "state" in filters:
        raise _Fallback  # needs probing
    # Machines.ls(probe=False): the rows' names after the filters that need no probing
    if not filters.keys() & {"driver", "label", "swarm"}:
        # Only names are printed and no filter reads a record: the store's listing is the answer
        # (a record that does not load is listed all the same, as its error row).
        names = api.store.names()
        api.active()  # computed (and its errors raised) as the full listing does
        for name in names:
            if "name" not in filters or any(name_match(v, name) for v in filters["name"]):
                out.echo(name)
        return 0
    records = api.store.load_all()
    api.active()
    for name, host in records:
        if isinstance(host, MachineError):  # an error row: no driver, labels or swarm
            keep = row_matches(filters, name=name, driver="", labels=[], swarm="")
        else:
            keep = row_matches(filters, name=name, driver=host.driver_name, labels=list(host.engine.labels),
                               swarm=_swarm_label(host) if "swarm" in filters else "")
        if keep:
            out.echo(name)
    return 0


def _swarm_label(host) -> str:
    if host.machine.extra.get("Swarm"):
        raise _Fallback  # swarm mode: machine.swarm words it
    from .readonly import classic_swarm_label

    return classic_swarm_label(host)


_VERBS = {
    "env": _env, "config": _config, "url": _url, "ip": _ip, "status": _status, "active": _active,
    "inspect": _inspect, "version": _version, "ls": _ls,
}
