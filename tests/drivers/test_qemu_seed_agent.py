"""The seed agent of our own images (drivers/qemu/seed-agent.sh) and what the driver gives it.

The agent itself runs in every VM test (our images boot with it); here: the seed's
machine-seed.sh read by a real POSIX sh with hostile values, the image hooks that install
the agent, and when the driver turns it on.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from machine.drivers.qemu import image, process, seed

PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3WcXrmIJt0Jc2cYmrdIZW9Nd7ILvPnJ3sbU1ZxXb6r it's $(touch pwned) `id`"
SH = shutil.which("dash") or "/bin/sh"


def _source(script: str, tmp_path: Path) -> dict:
    """Source machine-seed.sh as the agent does, with ms_link recording its arguments."""
    f = tmp_path / "machine-seed.sh"
    f.write_text(script)
    probe = (
        'ms_link() { printf "link\\0%s\\0%s\\0%s\\0" "$1" "$2" "$3"; }\n'
        f'. {f}\n'
        'printf "vars\\0%s\\0%s\\0%s\\0%s\\0" "$MS_INSTANCE_ID" "$MS_HOSTNAME" "$MS_USER" "$MS_SSH_KEY"\n'
        "ms_network\n"
        "ms_bootcmd\n"
    )
    r = subprocess.run([SH, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {"fields": r.stdout.split("\0"), "stderr": r.stderr}


def test_seed_script_values_reach_the_guest_shell_intact(tmp_path):
    guest = tmp_path / "a dir with 'quotes' and $(x)"
    script = seed.agent_script(
        instance_id="m1-abc", hostname="m1", public_key=PUB, ssh_user="ops",
        nat_mac="52:54:00:AA:BB:CC", private_mac="52:54:00:00:00:02", private_cidr="192.168.77.10/24",
        bootcmd=[["sh", "-c", 'mkdir -p "$1" && printf "%s\\n" "$1" > "$1/made"', "machine-share", str(guest)]])
    out = _source(script, tmp_path)
    f = out["fields"]
    assert f[:5] == ["vars", "m1-abc", "m1", "ops", PUB.strip()]
    assert f[5:9] == ["link", "nat0", "52:54:00:aa:bb:cc", "dhcp"]
    assert f[9:13] == ["link", "priv0", "52:54:00:00:00:02", "192.168.77.10/24"]
    # the boot command ran with its argument as one word, nothing else ran
    assert (guest / "made").read_text() == f"{guest}\n"
    assert not (tmp_path / "pwned").exists()


def test_seed_script_without_private_network_or_boot_commands(tmp_path):
    script = seed.agent_script(instance_id="i", hostname="h", public_key=PUB, ssh_user="root",
                               nat_mac="52:54:00:00:00:01")
    f = _source(script, tmp_path)["fields"]
    assert f[5:9] == ["link", "nat0", "52:54:00:00:00:01", "dhcp"] and f[9:] == [""]
    with pytest.raises(ValueError):
        seed.agent_script(instance_id="i", hostname="h", public_key="a\nb", ssh_user="root", nat_mac="m")
    with pytest.raises(ValueError):
        seed.agent_script(instance_id="i", hostname="h", public_key="a\rb", ssh_user="root", nat_mac="m")


def test_the_seed_iso_carries_the_agent_file(tmp_path):
    iso = tmp_path / "seed.iso"
    seed.write_seed(iso, instance_id="m1-abc", hostname="m1", public_key=PUB, ssh_user="root",
                    nat_mac="52:54:00:12:34:56")
    _, files = seed.read_iso(iso)
    assert "MS_INSTANCE_ID=m1-abc" in files["machine-seed.sh"].splitlines()
    # and cloud-init's files are still there, for images that boot with cloud-init
    assert {"meta-data", "user-data", "network-config"} <= set(files)


def test_the_agent_script_parses_in_posix_sh():
    agent = Path(image.__file__).with_name("seed-agent.sh")
    r = subprocess.run([SH, "-n", str(agent)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-s", "sh", str(agent)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_the_recipe_installs_and_enables_the_agent(tmp_path):
    rec = image.recipe(engine=True, suite="bookworm")
    assert rec["seed_agent"] == 1
    hooks = image.seed_agent_hooks()
    assert all(h in rec["hooks"] for h in hooks)
    assert hooks[-1] == 'chroot "$1" systemctl enable machine-seed.service'
    for hook in hooks[:2]:  # under a tight umask: the hook's explicit modes win
        r = subprocess.run(["sh", "-c", f"umask 077; {hook}", "hook", str(tmp_path)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    agent = tmp_path / "usr/local/sbin/machine-seed"
    assert agent.read_text() == Path(image.__file__).with_name("seed-agent.sh").read_text()
    assert agent.stat().st_mode & 0o777 == 0o755
    unit = tmp_path / "etc/systemd/system/machine-seed.service"
    assert unit.read_text() == image.SEED_AGENT_UNIT and unit.stat().st_mode & 0o777 == 0o644
    assert "ConditionKernelCommandLine=machine.seed" in image.SEED_AGENT_UNIT
    # a change to the agent is a new image: the hash covers the hooks
    other = dict(rec, hooks=rec["hooks"][:-3])
    assert image.recipe_hash(other) != image.recipe_hash(rec)


def test_has_seed_agent_reads_only_a_small_regular_recipe(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    assert image.has_seed_agent(d) is False  # no recipe.json: an image from elsewhere
    (d / "recipe.json").write_text(json.dumps({"seed_agent": 1}))
    assert image.has_seed_agent(d) is True
    for bad in ("{", "[1]", json.dumps({"seed_agent": 0}), json.dumps({"seed_agent": "1"})):
        (d / "recipe.json").write_text(bad)
        assert image.has_seed_agent(d) is False, bad
    (d / "recipe.json").write_text(json.dumps({"seed_agent": 1, "pad": "x" * (1 << 20)}))
    assert image.has_seed_agent(d) is False  # huge: not read
    (d / "recipe.json").unlink()
    os.mkfifo(d / "recipe.json")
    assert image.has_seed_agent(d) is False  # a FIFO would block a reader
    (d / "recipe.json").unlink()
    (d / "recipe.json").symlink_to("/dev/zero")
    assert image.has_seed_agent(d) is False


def test_the_kernel_command_line_turns_the_agent_on_only_for_such_images(tmp_path):
    from machine.drivers.qemu import QemuDriver

    drv = QemuDriver.__new__(QemuDriver)
    drv.config = QemuDriver.Config()
    assert drv._kernel_append() == process.KERNEL_APPEND
    drv.config.seed_agent = True
    line = drv._kernel_append()
    assert line.startswith(process.KERNEL_APPEND) and line.split()[-2:] == ["machine.seed", "cloud-init=disabled"]
    spec = process.VMSpec(name="m", disk="/d", seed="/s", qmp_socket="/q", pid_file="/p", console_log="/c",
                          ssh_port=2222, engine_port=2376, nat_mac="52:54:00:00:00:01", kernel="/k/vmlinuz",
                          append=line)
    argv = process.build_argv(spec)
    assert argv[argv.index("-append") + 1] == line
