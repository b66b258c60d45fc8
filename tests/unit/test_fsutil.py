"""machine.fsutil: explicit modes whatever the umask, atomic writes, stale temp sweeps."""
from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from machine import fsutil


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_ensure_dir_gives_every_created_level_the_mode(tmp_path, umask):
    target = tmp_path / "a" / "b" / "c"
    fsutil.ensure_dir(target)
    for p in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert mode(p) == 0o700, (oct(umask), p)
    other = fsutil.ensure_dir(tmp_path / "pub", 0o755)
    assert mode(other) == 0o755


def test_ensure_dir_leaves_existing_folders_alone(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    os.chmod(d, 0o751)
    fsutil.ensure_dir(d / "sub")
    assert mode(d) == 0o751 and mode(d / "sub") == 0o700


def test_ensure_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError):
        fsutil.ensure_dir(tmp_path / "f" / "sub")
    with pytest.raises(OSError):
        fsutil.ensure_dir(tmp_path / "f")


@pytest.mark.parametrize("want", [0o600, 0o644, 0o400])
def test_atomic_write_mode_is_explicit(tmp_path, umask, want):
    p = fsutil.atomic_write(tmp_path / "new" / "f", b"data", want)
    assert mode(p) == want
    assert mode(p.parent) == 0o700
    assert p.read_bytes() == b"data"
    assert [q.name for q in p.parent.iterdir()] == ["f"]  # no temp file left


def test_atomic_write_replaces_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    fsutil.atomic_write(link, "new", 0o600)
    assert target.read_text() == "keep"
    assert not link.is_symlink() and link.read_text() == "new"


def test_atomic_write_temp_name_carries_pid(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(a, b):
        seen.append(Path(a).name)
        return real(a, b)

    monkeypatch.setattr(os, "replace", spy)
    fsutil.atomic_write(tmp_path / "x.pem", "x")
    assert seen[0].startswith(f".x.pem.{os.getpid()}.") and seen[0].endswith(".tmp")


def test_sweep_temp_files(tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()
    dead = p.pid
    files = {
        "dead": tmp_path / f".key.pem.{dead}.0123456789ab.tmp",
        "live_young": tmp_path / f".key.pem.{os.getppid()}.0123456789ab.tmp",
        "live_old": tmp_path / f".cert.pem.{os.getppid()}.0123456789ac.tmp",
        "legacy_old": tmp_path / ".ca-key.pem.ab_cd123.tmp",
        "legacy_young": tmp_path / ".ca-key.pem.ab_cd124.tmp",
        "not_ours": tmp_path / "notes.tmp",
        "real": tmp_path / "key.pem",
    }
    for f in files.values():
        f.write_text("x")
    old = time.time() - 3600
    for k in ("live_old", "legacy_old"):
        os.utime(files[k], (old, old))
    removed = {p.name for p in fsutil.sweep_temp_files(tmp_path)}
    assert removed == {files[k].name for k in ("dead", "live_old", "legacy_old")}
    for k in ("live_young", "legacy_young", "not_ours", "real"):
        assert files[k].exists()


def test_pid_alive():
    assert fsutil.pid_alive(os.getpid())
    assert fsutil.pid_alive(1)
    p = subprocess.Popen(["true"])
    p.wait()
    assert not fsutil.pid_alive(p.pid)
    assert not fsutil.pid_alive(0) and not fsutil.pid_alive(-5)


def test_remove_path_never_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(outside)
    assert fsutil.remove_path(link)
    assert (outside / "precious").exists()
    assert not fsutil.remove_path(link)
