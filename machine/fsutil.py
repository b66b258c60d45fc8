"""Small filesystem helpers shared by the store, certs and client config.

Every file Machine writes goes through atomic_write so a crash or a concurrent
reader never sees a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_DIR = 0o700


def ensure_dir(path: str | os.PathLike, mode: int = PRIVATE_DIR) -> Path:
    """Create a directory (and parents) with a mode; never loosens an existing one."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=mode)
    return p


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int = PUBLIC_FILE) -> Path:
    """Write data to path atomically: temp file in the same folder, fsync, os.replace.

    The temp file is created with `mode` from the start, so a private key is never
    readable by others, not even for a moment.
    """
    p = Path(path)
    if isinstance(data, str):
        data = data.encode()
    ensure_dir(p.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
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
    _fsync_dir(p.parent)
    return p


def atomic_write_json(path: str | os.PathLike, obj, mode: int = PUBLIC_FILE) -> Path:
    return atomic_write(path, json.dumps(obj, indent=4, sort_keys=False) + "\n", mode)


def _fsync_dir(d: Path) -> None:
    # Make the rename itself durable; not every filesystem allows it, which is fine.
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
