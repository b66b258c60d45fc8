"""`machine env`, `ls` and `config` stay light: no cloud SDK, no SSH or crypto stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("boto3", "botocore", "openstack", "pyVmomi", "pyvmomi", "azure", "google.cloud", "googleapiclient",
         "paramiko", "cryptography", "rich", "jinja2", "keyring", "qemu.qmp")

PROBE = """
import json, sys
from machine.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_modules(args, env):
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env)
    last = p.stderr.strip().splitlines()[-1]
    data = json.loads(last)
    return data["code"], data["modules"]


def test_env_ls_config_import_no_sdk(machine_bin, store_path):
    machine_bin("create", "-q", "-d", "none", "--url", "tcp://127.0.0.1:9", "n1", check=True)
    env = dict(os.environ)
    for args in (["env", "--shell", "bash", "n1"], ["ls"], ["ls", "-q"], ["config", "--no-check", "n1"], ["url", "n1"],
                 ["--version"]):
        code, mods = loaded_modules(args, env)
        assert code == 0, args
        heavy = [m for m in mods if m.split(".")[0] in HEAVY or any(m.startswith(h + ".") or m == h for h in HEAVY)]
        assert heavy == [], f"machine {' '.join(args)} imported {heavy}"
