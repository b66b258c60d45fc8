"""Where typed credentials live, so later `stop`/`rm` work without typing them again.

A password given as a flag is kept in the OS keyring when a usable one exists,
else in the machine's own 0600 credentials file. config.json only says which.
Credentials that come from an SDK's own chain (env, profiles, clouds.yaml) are
never copied: the driver references them.
"""
from __future__ import annotations

import json
from pathlib import Path

from .fsutil import PRIVATE_FILE, atomic_write

SERVICE = "machine"
FILENAME = "credentials.json"


def _keyring():
    """The keyring module when a real backend is available, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    # The chainer with no children and "null" backends store nothing.
    if type(backend).__name__ in ("ChainerBackend",) and not getattr(backend, "backends", None):
        return None
    if "null" in type(backend).__module__:
        return None
    return keyring


def save(machine_dir: str | Path, name: str, secrets: dict, *, prefer_keyring: bool = True) -> str:
    """Store secrets; return where they went: "keyring", "file" or "" (none given)."""
    if not secrets:
        return ""
    kr = _keyring() if prefer_keyring else None
    if kr is not None:
        try:
            kr.set_password(SERVICE, name, json.dumps(secrets))
            return "keyring"
        except Exception:
            pass  # a locked or broken keyring: fall back to the private file
    atomic_write(Path(machine_dir) / FILENAME, json.dumps(secrets), mode=PRIVATE_FILE)
    return "file"


def load(machine_dir: str | Path, name: str, where: str) -> dict:
    if where == "keyring":
        kr = _keyring()
        if kr is not None:
            try:
                raw = kr.get_password(SERVICE, name)
                if raw:
                    return json.loads(raw)
            except Exception:
                pass
        return {}
    if where == "file":
        try:
            return json.loads((Path(machine_dir) / FILENAME).read_text())
        except (FileNotFoundError, ValueError):
            return {}
    return {}


def delete(machine_dir: str | Path, name: str, where: str) -> None:
    if where == "keyring":
        kr = _keyring()
        if kr is not None:
            try:
                kr.delete_password(SERVICE, name)
            except Exception:
                pass
    try:
        (Path(machine_dir) / FILENAME).unlink()
    except FileNotFoundError:
        pass
