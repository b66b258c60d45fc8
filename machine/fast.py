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

The read-only logic mirrors machine/api.py (`Machines._ready_url`, `_url`, `driver_for`,
`active`, `ls`): each mirrored function names its original. When those change, the
comparison test says so and this file follows them.
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
        # machine/cli/common.py print_error(e, debug=False)
        message = str(getattr(e, "message", None) or e)
        first, _, details = message.partition("\n")
        hint = getattr(e, "hint", None)
        line = first + (f": {hint}" if hint else "")
        if details:
            line += " (run with --debug for the command's output)"
        self.echo(f"Error: {prefix}{line}", err=True)

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
    return _VERBS[verb](_Api(_store_path(g)), args, out)


# ---------------------------------------------------------------------------- the API, read-only

class _Api:
    """The read-only part of machine.api.Machines, on the store's own code."""

    def __init__(self, storage_path):
        from .store import Store

        self.store = Store(storage_path)

    def load(self, name: str):
        # Machines.load
        from .store import validate_name

        validate_name(name)
        return self.store.load(name)

    def driver_for(self, host):
        # Machines.driver_for(host, persist=False)
        from . import credentials
        from .driver import DriverContext, Journal
        from .store import CorruptRecord

        cls = _driver_class(host.driver_name)
        mdir = self.store.machine_dir(host.name)
        if not isinstance(host.driver, cls.Config):
            try:
                host.driver = cls.Config.from_record(host.driver.to_record())
            except (ValueError, TypeError) as e:
                raise CorruptRecord(f"machine {host.name!r} has an unreadable Driver section ({e})",
                                    f"fix or remove {self.store.config_path(host.name)}") from None
            if host.machine.credentials not in ("", "file"):
                raise _Fallback  # the OS keyring: not a light import
            host.driver.apply_secrets(credentials.load(mdir, host.name, host.machine.credentials))

        def peers():
            raise _Fallback

        ctx = DriverContext(machine_name=host.name, machine_dir=mdir, cache_dir=self.store.cache_dir,
                            shared_dir=self.store.driver_dir(cls.name), journal=Journal(host.machine.journal, None),
                            lock=self.store.named_lock, peer_claims=peers, report=lambda s: None)
        return cls(host.driver, ctx)

    def url_of(self, host) -> str:
        # Machines._url
        from .errors import MachineError
        from .layout import DEFAULT_ENGINE_PORT

        if host.machine.url:
            return host.machine.url
        try:
            driver = self.driver_for(host)
        except MachineError:
            return host.url
        url = driver.engine_url(int(host.engine.port or DEFAULT_ENGINE_PORT))
        return "" if url.startswith(("tcp://:", "tcp://[]:")) else url

    def ready_url(self, name: str):
        # Machines._ready_url
        from .errors import MachineError
        from .model import Phase, State

        host = self.load(name)
        if host.machine.phase == Phase.CREATING.value:
            raise MachineError(f"machine {name} is still being created",
                               f"wait for its create to finish, or remove it: machine rm -f {name}")
        driver = None
        if host.machine.state_is_local is not False:
            try:
                driver = self.driver_for(host)
            except MachineError:
                driver = None
        if driver is not None and driver.capabilities.local_state:
            try:
                state = driver.state()
            except MachineError:
                state = State.RUNNING
            if state != State.RUNNING:
                raise MachineError("Host is not running", f"{name} is {state or 'not running'}; "
                                   f"start it: machine start {name}")
        url = self.url_of(host)
        if not url:
            raise MachineError(f"machine {name} has no URL yet", f"is it running? machine start {name}")
        return host, url

    def active(self):
        # Machines.active(environ=None)
        docker_host = os.environ.get("DOCKER_HOST", "")
        if docker_host:
            from .model import Host

            for name, host in self.store.load_all():
                if isinstance(host, Host) and self.url_of(host) == docker_host:
                    return name
            return None
        from . import clientconfig
        from .errors import UsageError
        from .store import validate_name

        def valid(n):
            try:
                validate_name(n)
                return True
            except UsageError:
                return False

        ctx = os.environ.get("DOCKER_CONTEXT") or clientconfig.current_context()
        for candidate in (ctx, (ctx or "").removeprefix("machine-")):
            if candidate and valid(candidate) and self.store.exists(candidate) \
                    and _context_name(candidate) == ctx:
                return candidate
        return None


def _context_name(machine_name: str) -> str:
    # machine.api.context_name
    if machine_name == "default" or len(machine_name) < 2 or not machine_name[0].isalnum():
        return f"machine-{machine_name}"
    return machine_name


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


def _env(api: _Api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"--shell": ("shell", _VALUE), "-u": ("unset", _FLAG), "--unset": ("unset", _FLAG),
                              "--no-proxy": ("no_proxy", _FLAG), "--swarm": ("swarm", _FLAG)}, max_args=1)
    from . import clientconfig
    from .errors import UsageError

    unset, no_proxy = opts.get("unset", False), opts.get("no_proxy", False)
    name = pos[0] if pos else None
    if unset and name:
        raise UsageError("Expected no machine name when the -u flag is present", "run: machine env -u")
    shell = opts.get("shell") or clientconfig.detect_shell()
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "machine"
    words = [a for a in sys.argv[1:]] if sys.argv[1:] else ["env", _name(pos)]
    command_line = [_prog_name(prog)] + words
    name = _name(pos)
    # Machines.env (check=False)
    if unset:
        text = clientconfig.render_env(shell=shell, machine_name=name, docker_host="", cert_path="", unset=True,
                                       no_proxy=no_proxy, environ=os.environ, command_line=command_line)
    else:
        host, url = api.ready_url(name)
        cert_path = host.auth.store_path or str(api.store.machine_dir(name))
        text = clientconfig.render_env(shell=shell, machine_name=name, docker_host=url, cert_path=cert_path,
                                       tls_verify=host.engine.tls_verify, no_proxy=no_proxy, environ=os.environ,
                                       command_line=command_line)
    out.echo(text, nl=False)
    return 0


def _prog_name(prog: str) -> str:
    # machine.cli.env._prog_name
    base = os.path.basename(prog)
    return "machine" if base in ("__main__.py", "-c", "machine") else prog


def _config(api: _Api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"--no-check": ("no_check", _FLAG)}, max_args=1)
    name = _name(pos)
    # Machines.config_flags
    from .errors import MachineError

    host, url = api.ready_url(name)
    a = host.auth
    if any(c.isspace() for c in url) or not url.startswith(("tcp://", "unix://", "ssh://")):
        raise MachineError(f"machine {name} has an engine URL that cannot be passed safely ({url!r})",
                           f"fix its record or recreate it: machine rm -f {name}")
    if not opts.get("no_check"):
        from . import layout
        from .engineapi import check_tls

        mdir = api.store.machine_dir(name)
        check_tls(url, ca=a.ca_cert_path or str(mdir / layout.CA_CERT),
                  cert=a.client_cert_path or str(mdir / layout.CLIENT_CERT),
                  key=a.client_key_path or str(mdir / layout.CLIENT_KEY), timeout=20.0)
    out.echo(f"--tlsverify\n--tlscacert={_go_quote(a.ca_cert_path)}\n--tlscert={_go_quote(a.client_cert_path)}"
             f"\n--tlskey={_go_quote(a.client_key_path)}\n-H={url}\n", nl=False)
    return 0


def _go_quote(s: str) -> str:
    # machine.api._go_quote
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _url(api: _Api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=1)
    out.echo(api.ready_url(_name(pos))[1])
    return 0


def _ip(api: _Api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=10**6)
    from .errors import MachineError

    names = pos or ["default"]
    failed = 0
    for n in names:  # cli.common.for_each(..., what="getting the IP of")
        try:
            # Machines.ip
            host = api.load(n)
            ip = host.ip or api.driver_for(host).ip()
            if not ip:
                raise MachineError(f"machine {n} has no IP address yet", f"is it running? machine start {n}")
            out.echo(ip)
        except MachineError as e:
            if type(e).__module__.startswith("machine.drivers"):
                raise _Fallback from None
            failed += 1
            out.error(e, prefix="" if len(names) == 1 else f"getting the IP of {n}: ")
    return 1 if failed else 0


def _status(api: _Api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=1)
    # Machines.status, for drivers that know their state without the network
    host = api.load(_name(pos))
    driver = api.driver_for(host)
    if not driver.capabilities.local_state:
        raise _Fallback
    out.echo(str(driver.state()))
    return 0


def _active(api: _Api, args: list[str], out: _Out) -> int:
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


def _inspect(api: _Api, args: list[str], out: _Out) -> int:
    opts, pos = _parse(args, {"-f": ("fmt", _VALUE), "--format": ("fmt", _VALUE)}, max_args=1)
    # Machines.inspect
    host = api.load(_name(pos))
    data = host.inspect_dict()
    data["Machine"]["CertExpiry"] = _cert_expiry(host)
    fmt = opts.get("fmt")
    if fmt:
        from .gotemplate import render

        out.echo(render(fmt, data))
    else:
        import json

        out.echo(json.dumps(data, indent=4))
    return 0


def _cert_expiry(host) -> str:
    # machine.api._cert_expiry, when it needs no certificate parsing
    cached = host.machine.extra.get("ServerCertNotAfter")
    if cached:
        return str(cached)[:10]
    path = host.auth.server_cert_path
    if not path or not os.path.exists(path):
        return ""
    raise _Fallback  # reading the PEM takes cryptography


def _version(api: _Api, args: list[str], out: _Out) -> int:
    _, pos = _parse(args, {}, max_args=0)  # with a NAME it asks the engine: the full CLI
    from . import __version__

    out.echo(f"machine version {__version__}")
    return 0


def _ls(api: _Api, args: list[str], out: _Out) -> int:
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
    filters = _parse_filters(opts.get("filters", []))
    if "state" in filters:
        raise _Fallback  # needs probing
    # Machines.ls(probe=False): the rows' names after the filters that need no probing
    from .errors import MachineError

    if not filters.keys() & {"driver", "label", "swarm"}:
        # Only names are printed and no filter reads a record: the store's listing is the answer
        # (a record that does not load is listed all the same, as its error row).
        names = api.store.names()
        api.active()  # computed (and its errors raised) as the full listing does
        for name in names:
            if "name" not in filters or any(_name_match(v, name) for v in filters["name"]):
                out.echo(name)
        return 0
    records = api.store.load_all()
    api.active()
    for name, host in records:
        broken = isinstance(host, MachineError)
        if "driver" in filters and not any(("" if broken else host.driver_name).lower() == v.lower()
                                           for v in filters["driver"]):
            continue
        if "name" in filters and not any(_name_match(v, name) for v in filters["name"]):
            continue
        if "label" in filters and not any(v in ([] if broken else list(host.engine.labels))
                                          for v in filters["label"]):
            continue
        if "swarm" in filters and not any(v == ("" if broken else _swarm_label(host)) for v in filters["swarm"]):
            continue
        out.echo(name)
    return 0


def _parse_filters(items: list[str]) -> dict[str, list[str]]:
    # machine.api.parse_filters
    from .errors import UsageError

    parsed: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("driver", "state", "name", "label", "swarm"):
            raise UsageError(f"invalid filter {item!r}",
                             "use driver=NAME, state=Running, name=REGEX, label=KEY=VALUE or swarm=NAME")
        parsed.setdefault(key, []).append(value)
    return parsed


def _name_match(pattern: str, name: str) -> bool:
    # machine.api._name_match
    import re

    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern == name


def _swarm_label(host) -> str:
    # machine.api._swarm_label, for classic swarm records
    if host.machine.extra.get("Swarm"):
        raise _Fallback  # swarm mode: machine.swarm words it
    s = host.swarm
    if not s.is_swarm:
        return ""
    return s.extra.get("Role") or ("manager" if s.master else "worker")


_VERBS = {
    "env": _env, "config": _config, "url": _url, "ip": _ip, "status": _status, "active": _active,
    "inspect": _inspect, "version": _version, "ls": _ls,
}
