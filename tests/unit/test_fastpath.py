"""The light path (machine/fast.py) answers exactly as the full click CLI does.

Every case runs twice in a fresh process — once as `machine` runs (light path first) and
once with MACHINE_NO_FAST=1 (the full CLI) — and stdout, stderr and the exit code must be
the same bytes. Cases the light path is meant to answer must not fall through to click,
so a silent regression to the slow path shows up here too; and no fast verb may import
click, an SSH, crypto, template or cloud library.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, sys
from machine.fast import run
code = run()
fast = code is not None
if code is None:
    from machine.cli.main import main
    code = main(sys.argv[1:])
sys.stdout.flush(); sys.stderr.flush()
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"fast": fast, "modules": sorted(sys.modules)}, f)
sys.exit(code)
"""

# The standard library's slow imports: dataclasses brings inspect, ast and dis; shellingham brings
# subprocess (machine.record and machine.shelldetect stand in for both on the light path).
STDLIB_SLOW = {"dataclasses", "inspect", "subprocess", "shellingham"}
HEAVY = {"click", "paramiko", "cryptography", "jinja2", "rich", "boto3", "botocore", "openstack", "azure", "google",
         "pyVmomi", "docker", "keyring"} | STDLIB_SLOW


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store with good, docker-machine-made, stopped, half-made and broken machines."""
    root = tmp_path_factory.mktemp("fast")
    store, docker = root / "store", root / "docker"
    env = dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(docker))
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "MACHINE_DEBUG", "MACHINE_NO_FAST", "NO_PROXY", "no_proxy"):
        env.pop(var, None)

    def machine(*args):
        p = subprocess.run([sys.executable, "-m", "machine", *args], env=dict(env, MACHINE_NO_FAST="1"),
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr

    machine("create", "-d", "none", "--url", "tcp://127.0.0.1:9", "n1")
    machine("create", "-d", "none", "--url", "tcp://10.0.0.7:2376", "--engine-label", "env=ci", "default")
    machines = store / "machines"
    # a record docker-machine wrote: config.json only, the URL in Driver.URL
    shutil.copytree(machines / "n1", machines / "dm")
    (machines / "dm" / "machine.json").unlink()
    cfg = json.loads((machines / "dm" / "config.json").read_text())
    cfg["Name"] = "dm"
    cfg["Driver"]["URL"] = "tcp://192.168.99.100:2376"
    (machines / "dm" / "config.json").write_text(json.dumps(cfg))

    def variant(name, driver=None, driver_section=None, **machine_fields):
        shutil.copytree(machines / "n1", machines / name)
        c = json.loads((machines / name / "config.json").read_text())
        c["Name"] = name
        if driver:
            c["DriverName"] = driver
        if driver_section is not None:
            c["Driver"] = driver_section
        (machines / name / "config.json").write_text(json.dumps(c))
        own = json.loads((machines / name / "machine.json").read_text())
        own["Machine"].update(machine_fields)
        (machines / name / "machine.json").write_text(json.dumps(own))

    variant("creating", Phase="creating")
    variant("stopped", driver="qemu", driver_section={"MachineName": "stopped", "IPAddress": "127.0.0.1"},
            URL="tcp://127.0.0.1:45555", StateIsLocal=True)
    variant("cloud", driver="amazonec2", driver_section={"MachineName": "cloud", "IPAddress": "203.0.113.9"},
            URL="tcp://203.0.113.9:2376", StateIsLocal=False)
    variant("plugin", driver="someplugin", URL="", StateIsLocal=None)
    variant("secret", Credentials="keyring", URL="")
    (machines / "corrupt").mkdir()
    (machines / "corrupt" / "config.json").write_text("{not json")
    (machines / "empty").mkdir()
    other = root / "other"
    shutil.copytree(store, other)
    return {"env": env, "store": store, "other": other, "root": root}


def probe(world, args, extra_env=None, full=False):
    out = world["root"] / "probe.json"
    env = dict(world["env"], PROBE_OUT=str(out), **(extra_env or {}))
    if full:
        env["MACHINE_NO_FAST"] = "1"
    p = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, timeout=60)
    meta = json.loads(out.read_text())
    return p.returncode, p.stdout, p.stderr, meta


SHELLS = ("bash", "sh", "zsh", "fish", "powershell", "cmd", "tcsh", "emacs")

# (args, extra env, answered on the light path?)
CASES = [
    *[(["env", "--shell", s, "n1"], {}, True) for s in SHELLS],
    *[(["env", "--shell", s, "-u"], {}, True) for s in SHELLS],
    *[(["env", "--shell", s, "--no-proxy", "n1"], {"NO_PROXY": "localhost,10.0.0.1"}, True) for s in SHELLS],
    (["env", "--shell", "bash", "--unset", "--no-proxy"], {"no_proxy": "x"}, True),
    (["env", "--shell=fish", "dm"], {}, True),
    (["env", "--shell", "bash"], {}, True),
    (["env", "n1", "--shell", "zsh", "--swarm"], {}, True),
    (["env", "--shell", "bash", "-u", "n1"], {}, True),
    (["env", "--shell", "bogus", "n1"], {}, True),
    (["env", "n1"], {"SHELL": "/bin/zsh"}, True),
    (["env", "--shell", "bash", "nope"], {}, True),
    (["env", "--shell", "bash", "corrupt"], {}, True),
    (["env", "--shell", "bash", "empty"], {}, True),
    (["env", "--shell", "bash", "creating"], {}, True),
    (["env", "--shell", "bash", "stopped"], {}, True),
    (["env", "--shell", "bash", "cloud"], {}, True),
    (["env", "--shell", "bash", "Bad_Name"], {}, True),
    (["env", "--shell", "bash", "plugin"], {}, False),
    (["env", "--shell", "bash", "secret"], {}, False),
    (["env", "--check", "n1"], {}, False),
    (["env", "--help"], {}, False),
    (["env", "--shell"], {}, False),
    (["env", "a", "b"], {}, False),
    (["config", "--no-check", "n1"], {}, True),
    (["config", "--no-check", "dm"], {}, True),
    (["config", "--no-check"], {}, True),
    (["config", "n1"], {}, True),
    (["config", "--no-check", "nope"], {}, True),
    (["config", "--no-check", "stopped"], {}, True),
    (["config", "--no-check", "corrupt"], {}, True),
    (["url", "n1"], {}, True),
    (["url", "dm"], {}, True),
    (["url"], {}, True),
    (["url", "cloud"], {}, True),
    (["url", "creating"], {}, True),
    (["url", "stopped"], {}, True),
    (["url", "nope"], {}, True),
    (["url", "empty"], {}, True),
    (["url", "n1", "extra"], {}, False),
    (["ip", "n1"], {}, True),
    (["ip", "n1", "dm", "default"], {}, True),
    (["ip", "n1", "nope", "corrupt"], {}, True),
    (["ip", "nope"], {}, True),
    (["status", "n1"], {}, True),
    (["status", "stopped"], {}, True),
    (["status", "nope"], {}, True),
    (["status", "cloud"], {}, False),
    (["active"], {}, True),
    (["active", "-t", "5"], {}, True),
    (["active"], {"DOCKER_HOST": "tcp://127.0.0.1:9"}, True),
    (["active"], {"DOCKER_HOST": "tcp://192.168.99.100:2376"}, True),
    # no machine matches, so every URL is computed, the plugin driver's too: the full CLI's to find
    (["active"], {"DOCKER_HOST": "tcp://1.2.3.4:2376"}, False),
    (["active"], {"DOCKER_CONTEXT": "n1"}, True),
    (["active"], {"DOCKER_CONTEXT": "machine-default"}, True),
    (["active"], {"DOCKER_CONTEXT": "elsewhere"}, True),
    (["active", "-t", "x"], {}, False),
    (["inspect", "n1"], {}, True),
    (["inspect", "dm"], {}, True),
    (["inspect", "-f", "{{.Driver.IPAddress}}", "n1"], {}, True),
    (["inspect", "--format", "{{json .HostOptions.EngineOptions.Labels}}", "default"], {}, True),
    (["inspect", "-f", "{{.Nope}}", "n1"], {}, True),
    (["inspect", "nope"], {}, True),
    (["inspect", "corrupt"], {}, True),
    (["version"], {}, True),
    (["--version"], {}, True),
    (["-v"], {}, True),
    (["--version", "env", "n1"], {}, True),
    (["version", "n1"], {}, False),
    (["ls", "-q"], {}, True),
    (["ls", "--quiet", "--filter", "driver=none"], {}, True),
    (["ls", "-q", "--filter", "name=^d"], {}, True),
    (["ls", "-q", "--filter", "label=env=ci"], {}, True),
    (["ls", "-q", "--filter", "swarm=manager"], {}, True),
    (["ls", "-q", "--filter", "DRIVER=amazonec2", "--filter", "driver=qemu"], {}, True),
    (["ls", "-q", "--filter", "bogus"], {}, True),
    (["ls", "-q", "-t", "3"], {}, True),
    (["ls", "-q", "-t", "0"], {}, False),
    (["ls", "-q", "--filter", "state=Running"], {}, False),
    (["ls"], {}, False),
    (["--bugsnag-api-token=no-report", "url", "n1"], {}, True),
    (["--bugsnag-api-token", "no-report", "--native-ssh", "env", "--shell", "bash", "n1"], {}, True),
    (["--github-api-token", "t", "--tls-ca-cert", "/x/ca.pem", "config", "--no-check", "n1"], {}, True),
    (["-D", "url", "nope"], {}, False),
    (["url", "nope"], {"MACHINE_DEBUG": "1"}, False),
    (["--help"], {}, False),
    ([], {}, False),
    (["nosuchverb"], {}, False),
    (["--nosuchflag", "url", "n1"], {}, False),
]


@pytest.mark.parametrize("args,extra,fast", CASES, ids=[" ".join(c[0]) + (f" {c[1]}" if c[1] else "") or "-"
                                                        for c in CASES])
def test_light_path_answers_as_the_full_cli(world, args, extra, fast):
    code, out, err, meta = probe(world, args, extra)
    fcode, fout, ferr, fmeta = probe(world, args, extra, full=True)
    assert not fmeta["fast"]
    assert (code, out.decode(), err.decode()) == (fcode, fout.decode(), ferr.decode())
    assert meta["fast"] is fast, "answered by the full CLI" if fast else "the light path answered"
    if fast:
        # (a qemu machine's state comes from its driver package, whose own imports are its business)
        ignore = STDLIB_SLOW if "stopped" in args else set()
        heavy = sorted({m.split(".")[0] for m in meta["modules"]} & (HEAVY - ignore))
        assert heavy == [], f"machine {' '.join(args)} imported {heavy}"


@pytest.mark.parametrize("flag", ["-s", "--storage-path", "--storage-path="])
def test_storage_path_flag_beats_the_environment(world, flag):
    args = ([flag + str(world["other"])] if flag.endswith("=") else [flag, str(world["other"])]) + ["url", "n1"]
    code, out, err, meta = probe(world, args, {"MACHINE_STORAGE_PATH": str(world["root"] / "missing")})
    assert (code, out, err) == probe(world, args, {"MACHINE_STORAGE_PATH": str(world["root"] / "missing")},
                                     full=True)[:3]
    assert meta["fast"] and out == b"tcp://127.0.0.1:9\n"


def test_python_dash_m_and_the_entry_point_take_the_light_path(world):
    """`python -m machine` and `machine.fast:main` answer without click."""
    code = ("import sys; sys.argv[1:] = ['url', 'n1']; import runpy\n"
            "try:\n    runpy.run_module('machine', run_name='__main__')\nexcept SystemExit as e:\n"
            "    print('click' in sys.modules, e.code, file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code], env=world["env"], capture_output=True, text=True)
    assert p.stdout == "tcp://127.0.0.1:9\n"
    assert p.stderr.strip() == "False 0"


def test_create_and_rm_of_a_none_machine_load_no_ssh_or_cloud_code(world, tmp_path):
    env = dict(world["env"], MACHINE_STORAGE_PATH=str(tmp_path / "s"), DOCKER_CONFIG=str(tmp_path / "d"))
    script = ("import sys, json\nfrom machine.cli.main import main\ncode = main(sys.argv[1:])\n"
              "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n")
    forbidden = {"paramiko", "boto3", "botocore", "openstack", "azure", "google", "pyVmomi", "docker", "jinja2",
                 "machine.ssh", "machine.transfer", "machine.provision", "machine.engineapi"}
    for args in (["create", "-d", "none", "--url", "tcp://127.0.0.1:9", "x1"], ["rm", "-y", "x1"]):
        p = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
        code, mods = json.loads(p.stderr.strip().splitlines()[-1])
        assert code == 0, p.stderr
        bad = sorted(m for m in mods if m.split(".")[0] in forbidden or any(
            m == f or m.startswith(f + ".") for f in forbidden)
            or (m.startswith("machine.drivers.") and m.split(".")[2] != "none"))
        assert bad == [], f"machine {' '.join(args)} imported {bad}"


@pytest.mark.parametrize("args,extra", [(["active"], {"DOCKER_CONTEXT": "n1"}), (["active"], {}),
                                        (["ls", "-q"], {}), (["ls", "-q", "--filter", "name=n"], {}),
                                        (["--version"], {}), (["version"], {})])
def test_prompt_and_listing_load_no_record_classes(world, args, extra):
    """`machine active` runs in every prompt and `ls -q` in loops: names only, no record classes."""
    code, out, err, meta = probe(world, args, extra)
    assert meta["fast"]
    assert {"machine.model", "machine.driver", "dataclasses"} & set(meta["modules"]) == set()
