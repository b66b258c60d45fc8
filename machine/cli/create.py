"""`machine create`: flags of the chosen driver are added before parsing, so
`machine create -d qemu --help` lists --qemu-* options."""
from __future__ import annotations

import os

import click

from ..layout import DEFAULT_CERT_DAYS
from ..validate import INSTALL_STRATEGIES as ENGINE_INSTALL
from .common import get_api, step_reporter
from .swarm import create_options as swarm_and_batch_options


def _driver_from_args(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a in ("-d", "--driver") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--driver="):
            return a.split("=", 1)[1]
        if a.startswith("-d") and len(a) > 2 and not a.startswith("--"):
            return a[2:]
    return os.environ.get("MACHINE_DRIVER")


DRIVER_PARAM_PREFIX = "driver__"


def _click_option(driver_name: str, s) -> click.Option:
    # A driver's option may share a name with a create option (generic's engine-port):
    # its click parameter name is namespaced, and stripped again before the driver sees it.
    decls = [s.cli_flag(driver_name), DRIVER_PARAM_PREFIX + s.field]
    help_text = s.help + (f" [env {s.envvar}]" if s.envvar else "")
    if s.default not in (None, "", False, [], {}, 0) or (s.default == 0 and s.kind is int):
        help_text += f" [default: {s.default}]"
    kw: dict = {"help": help_text, "default": None}
    if s.kind is bool:
        kw.update(is_flag=True, flag_value=True)
    elif s.kind in (list, dict):
        kw["multiple"] = True
    elif s.choices:  # shown here, checked by the driver config (the same message for Python callers)
        kw["metavar"] = "[" + "|".join(str(c) for c in s.choices) + "]"
    elif s.kind in (int, float):
        kw["metavar"] = "INTEGER" if s.kind is int else "NUMBER"  # the driver config checks the value
    opts = [click.Option(decls, **kw)]
    for alias in s.aliases:  # docker-machine's spelling: accepted, not shown
        opts.append(click.Option([alias, DRIVER_PARAM_PREFIX + "alias__" + s.field], hidden=True,
                                 **{k: v for k, v in kw.items() if k != "help"}))
    return opts


def _go_bool_flags(args: list[str], cls) -> list[str]:
    """docker-machine (Go's flag package) takes --bool-flag=true|false; GitLab Runner's
    MachineOptions pass them so ("amazonec2-use-private-address=true")."""
    bools = set()
    for s in cls.Config.options():
        if s.kind is bool:
            bools.add(s.cli_flag(cls.name))
            bools.update(s.aliases)
    out = []
    for a in args:
        flag, sep, value = a.partition("=")
        if sep and flag in bools:
            v = value.strip().lower()
            if v in ("1", "true", "t", "yes"):
                out.append(flag)
                continue
            if v in ("0", "false", "f", "no"):
                continue
        out.append(a)
    return out


class CreateCommand(click.Command):
    """Adds the driver's options once -d/--driver is known."""

    def parse_args(self, ctx, args):
        name = _driver_from_args(args)
        if name:
            from ..driver import get_driver_class

            cls = get_driver_class(name)
            # this run's driver options only: a driver chosen by an earlier call in the same process
            # (Python callers, tests) must not leave its options behind
            self.params = [p for p in self.params if not p.name.startswith(DRIVER_PARAM_PREFIX)]
            for s in cls.Config.options():
                self.params.extend(_click_option(cls.name, s))
            ctx.meta["driver_class"] = cls
            args = _go_bool_flags(args, cls)
        return super().parse_args(ctx, args)

    def format_help_text(self, ctx, formatter):
        super().format_help_text(ctx, formatter)
        cls = ctx.meta.get("driver_class")
        if cls is not None:
            formatter.write_paragraph()
            formatter.write_text(f"Driver {cls.name}: {cls.description}")

    def format_options(self, ctx, formatter):
        cls = ctx.meta.get("driver_class")
        own = [p for p in self.get_params(ctx) if not p.name.startswith(DRIVER_PARAM_PREFIX)]
        records = [r for r in (p.get_help_record(ctx) for p in own) if r]
        with formatter.section("Options"):
            formatter.write_dl(records)
        if cls is None:
            return
        by_name = {p.name: p for p in self.params}
        groups: dict[str, list] = {"General": []}
        for s in cls.Config.options():
            p = by_name.get(DRIVER_PARAM_PREFIX + s.field)
            rec = p.get_help_record(ctx) if p is not None else None
            if rec:
                groups.setdefault(s.group or "General", []).append(rec)
        for group, recs in groups.items():
            if not recs:
                continue
            with formatter.section(f"Driver {cls.name} options: {group}"):
                formatter.write_dl(recs)

    def format_epilog(self, ctx, formatter):
        if "driver_class" not in ctx.meta:
            from ..driver import driver_names

            formatter.write_paragraph()
            formatter.write_text("Drivers: " + ", ".join(driver_names())
                                 + ". Run `machine create -d DRIVER --help` for a driver's options.")


@click.command(cls=CreateCommand)
@click.option("-d", "--driver", envvar="MACHINE_DRIVER", help="Driver that makes the host [env MACHINE_DRIVER]")
@click.option("--engine-install-url", envvar="MACHINE_DOCKER_INSTALL_URL", default=None,
              help="Install script URL (get.docker.com style) for --engine-install=script")
@click.option("--engine-install", type=click.Choice(ENGINE_INSTALL), default=None,
              help="How to install the engine: script (default), package, bundle, none")
@click.option("--engine-bundle", type=click.Path(exists=True), default=None,
              help="Offline bundle of engine packages (implies --engine-install=bundle)")
@click.option("--engine-opt", multiple=True, help="dockerd flag as key=value (repeatable)")
@click.option("--engine-insecure-registry", multiple=True, help="Insecure registry (repeatable)")
@click.option("--engine-registry-mirror", multiple=True, help="Registry mirror (repeatable)")
@click.option("--engine-label", multiple=True, help="Engine label key=value (repeatable)")
@click.option("--engine-storage-driver", default="", help="Storage driver for the engine")
@click.option("--engine-env", multiple=True, help="Environment for the engine KEY=VALUE (repeatable)")
@click.option("--engine-port", type=int, default=None,
              help="Port dockerd listens on with TLS [default: the driver's engine port, else 2376]")
@click.option("--engine-live-restore/--no-engine-live-restore", default=True, show_default=True,
              help="Keep containers running while the engine restarts")
@click.option("--tls-san", multiple=True, help="Extra name or IP for the server certificate (repeatable)")
@click.option("--tls-key-type", type=click.Choice(["ecdsa", "rsa2048", "rsa4096"]), default="ecdsa",
              show_default=True, help="Key type for new certificates (RSA for old engines)")
@click.option("--tls-cert-days", type=int, default=DEFAULT_CERT_DAYS, show_default=True,
              help="Server certificate validity")
@click.option("--tls-ca-cert", type=click.Path(), default=None, help="Your own CA certificate")
@click.option("--tls-ca-key", type=click.Path(), default=None, help="Your own CA key")
@click.option("--tls-client-cert", type=click.Path(), default=None, help="Your own client certificate")
@click.option("--tls-client-key", type=click.Path(), default=None, help="Your own client key")
@click.option("--keep-on-failure", is_flag=True, help="Keep a failed machine for `machine provision` instead of rolling back")
@click.option("--ssh-timeout", default=600, show_default=True, help="Seconds to wait for SSH")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines")
@swarm_and_batch_options
@click.argument("name", nargs=-1)
@click.pass_context
def create(ctx, driver, engine_install_url, engine_install, engine_bundle, engine_opt, engine_insecure_registry,
           engine_registry_mirror, engine_label, engine_storage_driver, engine_env, engine_port,
           engine_live_restore, tls_san, tls_key_type, tls_cert_days, tls_ca_cert, tls_ca_key, tls_client_cert,
           tls_client_key, keep_on_failure, ssh_timeout, quiet, name, **driver_values):
    """Create a machine: make the host, install Docker Engine with mutual TLS, write client config."""
    from ..model import EngineOptions
    from ..validate import TLSOptions

    if not driver:
        from ..errors import UsageError

        raise UsageError("no driver given", "pass -d DRIVER (e.g. -d qemu, -d generic, -d none)")
    engine = EngineOptions(
        arbitrary_flags=list(engine_opt), insecure_registry=list(engine_insecure_registry),
        registry_mirror=list(engine_registry_mirror), labels=list(engine_label),
        storage_driver=engine_storage_driver, env=list(engine_env), port=engine_port or 0,
        live_restore=engine_live_restore, install=engine_install or "",
        bundle=os.path.abspath(engine_bundle) if engine_bundle else "",
    )
    if engine_install_url:
        engine.install_url = engine_install_url
    given = ctx.find_root().obj.get("tls") or {}  # docker-machine's global --tls-* flags are the defaults
    tls = TLSOptions(key_type=tls_key_type, cert_days=tls_cert_days, sans=list(tls_san),
                     ca_cert=tls_ca_cert or given.get("ca_cert"), ca_key=tls_ca_key or given.get("ca_key"),
                     client_cert=tls_client_cert or given.get("client_cert"),
                     client_key=tls_client_key or given.get("client_key"))
    api = get_api(ctx)
    from .swarm import batch_or_single  # several NAMEs or -n: made in parallel, summary, exit

    name, swarm_mode = batch_or_single(ctx, api, name, driver, driver_values, quiet=quiet, engine=engine, tls=tls,
                                       driver_options=_given_driver_values(ctx, driver_values),
                                       keep_on_failure=keep_on_failure, ssh_deadline_s=ssh_timeout)
    report = step_reporter(name, quiet)
    host = api.create(name, driver, _given_driver_values(ctx, driver_values), engine=engine, tls=tls,
                      keep_on_failure=keep_on_failure, on_step=report, ssh_deadline_s=ssh_timeout,
                      swarm_mode=swarm_mode)
    if not quiet and not api.driver_for(host, persist=False).capabilities.provision:
        click.echo(f"Recorded the existing engine at {api.url(name)} (not provisioned, not checked; "
                   f"`machine env --check {name}` verifies it)", err=True)
    elif not quiet:
        click.echo(f"Docker is up and running at {host.machine.url} (verified over TLS)", err=True)
        click.echo(f"To point your docker client at it, run: eval $(machine env {name})  or  docker --context "
                   f"{_context(name)} ...", err=True)


def _given_driver_values(ctx, values: dict) -> dict:
    """Driver options the user typed (env vars and defaults are the driver config's business)."""
    from click.core import ParameterSource

    out: dict = {}
    for param, value in values.items():
        if not param.startswith(DRIVER_PARAM_PREFIX):
            continue
        if ctx.get_parameter_source(param) is not ParameterSource.COMMANDLINE:
            continue
        field = param[len(DRIVER_PARAM_PREFIX):].removeprefix("alias__")
        if isinstance(value, tuple):
            value = list(out.get(field, [])) + list(value)
        out[field] = value
    return out


def _context(name: str) -> str:
    from ..api import context_name

    return context_name(name)
