"""Small filesystem helpers shared by the store, certs and client config.

Every file Machine writes goes through atomic_write so a crash or a concurrent
reader never sees a half-written file.

Modes are always set explicitly (fchmod/chmod after creation), never left to the
umask: under `umask 000` a folder we create is still 0700 and a key still 0600.
Temp files carry our pid in their name (`.NAME.PID.RANDOM.tmp`) so a sweep can
tell a dead writer's leftovers from a live one's work.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_DIR = 0o700

#: a temp file is stale when its writer is dead, or it is older than this
STALE_AFTER_S = 60.0

# .NAME.PID.RANDOM.tmp (ours since the pid was added) or .NAME.RANDOM.tmp (older
# versions, which used tempfile.mkstemp's 8-character suffix)
_TEMP_FILE_RE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?(?P<rand>[A-Za-z0-9_]{8,32})\.tmp$")


def ensure_dir(path: str | os.PathLike, mode: int = PRIVATE_DIR) -> Path:
    """Create a directory and its missing parents, each with exactly `mode`.

    Every level this call creates is chmod'ed to `mode` after mkdir, so the
    umask cannot loosen it; an existing folder is left as it is (never loosened,
    never tightened: it may be the user's). A non-folder in the way raises
    FileExistsError / NotADirectoryError as mkdir does.
    """
    p = Path(path)
    missing: list[Path] = []
    q = p
    while True:
        try:
            st = os.stat(q)
        except FileNotFoundError:
            missing.append(q)
            parent = q.parent
            if parent == q:
                break
            q = parent
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(q))
        break
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # someone else made it meanwhile: theirs, leave its mode alone
        os.chmod(d, mode)
    return p


def _temp_name(name: str) -> str:
    import secrets  # here, not at the top: it loads hashlib/OpenSSL, which read-only verbs never need

    return f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int = PUBLIC_FILE) -> Path:
    """Write data to path atomically: temp file in the same folder, fsync, os.replace.

    The temp file is created with `mode` from the start (O_CREAT with 0600, then
    fchmod to `mode`), so a private key is never readable by others, not even for
    a moment, and the umask plays no part in the final mode. A missing parent is
    created 0700.
    """
    p = Path(path)
    if isinstance(data, str):
        data = data.encode()
    ensure_dir(p.parent)
    for _ in range(100):
        tmp = p.parent / _temp_name(p.name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(errno.EEXIST, "cannot create a temp file", str(p.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(p.parent)
    return p


def atomic_write_json(path: str | os.PathLike, obj, mode: int = PUBLIC_FILE) -> Path:
    return atomic_write(path, json.dumps(obj, indent=4, sort_keys=False) + "\n", mode)


def fsync_dir(d: str | os.PathLike) -> None:
    """Make a rename in folder d durable; not every filesystem allows it, which is fine."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_fsync_dir = fsync_dir  # the old private name


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (ours counts)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def is_stale(path: str | os.PathLike, pid: int | None, *, max_age_s: float = STALE_AFTER_S,
             now: float | None = None) -> bool:
    """A leftover is stale when its writer (pid) is dead, or it is older than max_age_s."""
    if pid is not None and pid != os.getpid() and not pid_alive(pid):
        return True
    try:
        mtime = os.lstat(path).st_mtime
    except FileNotFoundError:
        return False
    return ((time.time() if now is None else now) - mtime) > max_age_s


def remove_path(path: str | os.PathLike) -> bool:
    """Remove a file, symlink (not its target) or folder tree; True if something was removed."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(p, ignore_errors=True)
        return not os.path.lexists(p)
    try:
        p.unlink()
    except FileNotFoundError:
        return False
    return True


def sweep_temp_files(folder: str | os.PathLike, *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove atomic_write's stale temp files (`.NAME[.PID].RANDOM.tmp`) in folder.

    Only regular files and symlinks matching our pattern are touched; a temp file
    of a live writer younger than max_age_s is left alone. The caller holds the
    lock that guards the folder. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for e in entries:
        m = _TEMP_FILE_RE.match(e.name)
        if not m or e.is_dir(follow_symlinks=False):
            continue
        pid = int(m.group("pid")) if m.group("pid") else None
        if is_stale(e.path, pid, max_age_s=max_age_s):
            try:
                os.unlink(e.path)
                removed.append(Path(e.path))
            except FileNotFoundError:
                pass
    return removed


def read_small_file(path: str | os.PathLike, limit: int) -> bytes:
    """Read a regular file of at most `limit` bytes.

    A FIFO, device, socket or folder raises ValueError at once instead of
    blocking or reading forever (the open itself is non-blocking); a bigger file
    raises ValueError too. FileNotFoundError / PermissionError pass through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{st.st_size} bytes, more than {limit}")
        chunks = []
        total = 0
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            total += len(b)
            if total > limit:
                raise ValueError(f"more than {limit} bytes")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)
