"""Hostile input through every verb, and kill -9 through create/rm: counted, never a traceback.

A corpus of names, flags, URLs, ports and engine options goes through the real `machine`
program; each run must end with exit 0 or 1 and at most one "Error:" line — no traceback,
no "unexpected" error. Then `machine create`/`rm` of `none` machines are killed with SIGKILL
at random points; after each kill the store stays readable and `rm -f` cleans everything.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

NAMES = ["ok1", "bad_name", "trailing\n", "-dash", ".dot", "a" * 251, "a" * 250, "ü", "a/b", "..", "",
         "x y", "$(id)", "`id`", "default", "A" * 64]
URLS = ["tcp://127.0.0.1:9", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:-1", "tcp://[::1]:9", "tcp://",
        "http//nope", "tcp://127.0.0.1:9 --tlsverify=false", "tcp://127.0.0.1:9\n", "unix:///var/run/x.sock",
        "tcp://127.0.0.1:9/`id`", "tcp://a b:9", "tcp://127.0.0.1:nan"]
ENGINE = [["--engine-env", "A=1\nExecStartPre=/bin/sh"], ["--engine-env", "1BAD=x"], ["--engine-opt", "debug\n"],
          ["--engine-label", "novalue"], ["--engine-label", "a=b"], ["--engine-port", "0"],
          ["--engine-port", "70000"], ["--engine-storage-driver", "overlay2; rm -rf /"],
          ["--engine-insecure-registry", "a b"], ["--tls-san", "a,b"], ["--tls-cert-days", "0"],
          ["--tls-cert-days", "nan"], ["--engine-install-url", "ftp://x"], ["--ssh-timeout", "nan"],
          ["--ssh-timeout", "-5"], ["--engine-install", "bundle"]]
VERBS = [["ls", "-t", "-1"], ["ls", "-t", "nan"], ["ls", "--filter", "bogus"], ["ls", "--format", "{{"],
         ["inspect", "-f", "{{.Nope}}"], ["env", "--shell", "nosuchshell"], ["url"], ["ip"], ["status"],
         ["config"], ["rm", "-y"], ["stop"], ["start"], ["kill"], ["provision"], ["ssh"], ["version"],
         ["regenerate-certs", "-f"], ["upgrade"], ["use"], ["active"]]


def cli_env(store) -> dict:
    return dict(os.environ, MACHINE_STORAGE_PATH=str(store), DOCKER_CONFIG=str(store) + "-docker")


def run(store, *args, timeout=60):
    env = cli_env(store)
    p = subprocess.run([sys.executable, "-m", "machine", *args], capture_output=True, text=True, env=env,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def judge(code, err, counts, args):
    counts["inputs"] += 1
    counts["cli_inputs"] += 1
    if "Traceback" in err:
        counts["tracebacks"] += 1
    if "Error: unexpected " in err:  # our wording for a bug that escaped every handler
        counts["unexpected"] += 1
    assert code in (0, 1), (args, code, err)
    assert "Traceback" not in err and "Error: unexpected " not in err, (args, err)
    assert len([ln for ln in err.splitlines() if ln.startswith("Error")]) <= 1, (args, err)


def test_hostile_input_through_every_verb(tmp_path, counts):
    store = tmp_path / "store"
    assert run(store, "create", "-d", "none", "--url", "tcp://127.0.0.1:9", "ok1")[0] == 0
    for name in NAMES:
        for url in URLS[:2]:
            code, _, err = run(store, "create", "-d", "none", "--url", url, name)
            judge(code, err, counts, ("create", url, name))
    for url in URLS:
        code, _, err = run(store, "create", "-d", "none", "--url", url, "u1")
        judge(code, err, counts, ("create", url))
        if code == 0:
            for verb in (["config", "--no-check", "u1"], ["env", "--shell", "bash", "u1"], ["url", "u1"]):
                code2, out, err2 = run(store, *verb)
                judge(code2, err2, counts, verb)
                assert "--tlsverify=false" not in out.split("\n")[-2:], (url, verb, out)
            assert run(store, "rm", "-f", "u1")[0] == 0
    for extra in ENGINE:
        code, _, err = run(store, "create", "-d", "none", "--url", "tcp://127.0.0.1:9", *extra, "e1")
        judge(code, err, counts, extra)
        if code == 0:
            run(store, "rm", "-f", "e1")
    for port in ["0", "87958", "-1", "nan", "22x", "65536"]:
        code, _, err = run(store, "create", "-d", "generic", "--generic-ip-address", "127.0.0.1",
                           "--generic-ssh-port", port, "g1")
        judge(code, err, counts, ("generic port", port))
        assert code == 1
    for verb in VERBS:
        for name in (["ghost"], ["ok1"], ["bad_name"]):
            if name == ["ok1"] and verb[0] in ("rm", "stop", "kill"):
                continue  # ok1 must survive the corpus
            code, _, err = run(store, *verb, *name, timeout=90)
            judge(code, err, counts, verb + name)
    # the good machine is untouched by all of it
    assert run(store, "url", "ok1")[1] == "tcp://127.0.0.1:9\n"


def test_kill_9_during_create_and_rm_leaves_a_store_rm_f_cleans(tmp_path, counts, long_sweep):
    store = tmp_path / "store"
    env = cli_env(store)  # the killed runs and the cleaning ones see the same docker config
    rng = random.Random(7)
    kills = 60 if long_sweep else 24
    for i in range(kills):
        name = f"k{i}"
        verb = ["create", "-d", "none", "--url", "tcp://127.0.0.1:9", name] if i % 3 else ["rm", "-y", f"k{i - 1}"]
        p = subprocess.Popen([sys.executable, "-m", "machine", *verb], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        counts["kills"] += 1
        counts["kills_survived"] += 1
        counts["cli_kills"] += 1
        code, out, err = run(store, "ls", "-q")
        assert code == 0 and "Traceback" not in err, err
    for name in run(store, "ls", "-q")[1].split():
        code, _, err = run(store, "rm", "-f", name)
        assert code == 0, (name, err)
    assert run(store, "ls", "-q")[1] == ""
    machines = store / "machines"
    assert not machines.exists() or os.listdir(machines) == []
    docker_contexts = Path(env["DOCKER_CONFIG"]) / "contexts" / "meta"
    assert not docker_contexts.exists() or os.listdir(docker_contexts) == []
    # and a create after all of it works
    assert run(store, "create", "-d", "none", "--url", "tcp://127.0.0.1:9", "after")[0] == 0
