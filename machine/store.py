"""The machine store on disk, in docker-machine's layout (file names: layout.py).

Writes are atomic; each machine has its own lock; CA creation takes the store
lock so two processes creating machines at once end with one CA.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .errors import MachineError, UsageError, machine_exists, no_such_machine
from . import layout
from .fsutil import PRIVATE_DIR, PRIVATE_FILE, atomic_write_json, ensure_dir

if TYPE_CHECKING:  # pragma: no cover
    from .model import Host  # imported by load(): `machine active` and `ls -q` list names without it

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-.]*$")
LOCK_TIMEOUT = 600.0
MAX_NAME = 250   # the lock file NAME.lock must fit a file name (255 bytes)


def default_store_path(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("MACHINE_STORAGE_PATH"):
        return Path(environ["MACHINE_STORAGE_PATH"]).expanduser()
    return Path.home() / ".docker" / "machine"


def validate_name(name: str) -> str:
    """docker-machine's rule: letters, digits, '-' and '.', starting alphanumeric."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        raise UsageError(
            f"invalid machine name {name!r}",
            "use letters, digits, '-' and '.', starting with a letter or digit",
        )
    return name


MAX_RECORD_BYTES = 4 * 1024 * 1024


def read_record_file(path: Path) -> str:
    """A record file's text: a regular file (no link, FIFO or device), of sane size, UTF-8."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)  # O_NOFOLLOW: a symlink fails; O_NONBLOCK: a FIFO does not hang
    try:
        st = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        if st.st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{path.name} is {st.st_size} bytes, more than a record can be")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    finally:
        os.close(fd)
    return data.decode("utf-8")


def natural_key(name: str):
    """docker-machine's `ls` order: case-insensitive, numbers by value (node2 before node10)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name.lower()) if part]


class CorruptRecord(MachineError):
    pass


class Store:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().absolute() if path else default_store_path().absolute()
        self.machines_dir = self.path / layout.MACHINES_DIR
        self.certs_dir = self.path / layout.CERTS_DIR
        self.cache_dir = self.path / layout.CACHE_DIR
        self.locks_dir = self.path / layout.LOCKS_DIR

    # ---- paths ------------------------------------------------------------
    def machine_dir(self, name: str) -> Path:
        return self.machines_dir / validate_name(name)

    def config_path(self, name: str) -> Path:
        return self.machine_dir(name) / layout.CONFIG_JSON

    def driver_dir(self, driver_name: str) -> Path:
        """A driver's own folder for state its machines share (created on first use)."""
        return self.path / layout.DRIVERS_DIR / validate_name(driver_name)

    def ca_cert(self) -> Path:
        return self.certs_dir / layout.CA_CERT

    def ca_key(self) -> Path:
        return self.certs_dir / layout.CA_KEY

    def client_cert(self) -> Path:
        return self.certs_dir / layout.CLIENT_CERT

    def client_key(self) -> Path:
        return self.certs_dir / layout.CLIENT_KEY

    # ---- locks -------------------------------------------------------------
    @contextmanager
    def _lock(self, filename: str, timeout: float) -> Iterator[None]:
        from filelock import FileLock, Timeout

        ensure_dir(self.path, PRIVATE_DIR)
        ensure_dir(self.locks_dir)
        lock = FileLock(str(self.locks_dir / filename), mode=PRIVATE_FILE)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise MachineError(
                f"another machine command holds the lock {filename}",
                "wait for it to finish, or remove the lock file if no machine command is running",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def lock(self, name: str, timeout: float = LOCK_TIMEOUT):
        """Per-machine lock: one writer per machine at a time."""
        return self._lock(f"{validate_name(name)}.lock", timeout)

    def store_lock(self, timeout: float = LOCK_TIMEOUT):
        return self._lock("store.lock", timeout)

    def named_lock(self, name: str, timeout: float = LOCK_TIMEOUT):
        """A lock shared by every machine command on this store (e.g. "qemu-ports")."""
        if not NAME_RE.match(name or ""):
            raise ValueError(f"invalid lock name {name!r}")
        return self._lock(f"named-{name}.lock", timeout)

    # ---- records -----------------------------------------------------------
    def exists(self, name: str) -> bool:
        """A machine folder (or something planted in its place, which rm -f can clear) exists."""
        return os.path.lexists(self.machine_dir(name))

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.machines_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted((e for e in entries
                       if not e.startswith(".") and NAME_RE.fullmatch(e) and len(e) <= MAX_NAME
                       and os.path.lexists(self.machines_dir / e)
                       and not (self.machines_dir / e).is_file()),
                      key=natural_key)

    def load(self, name: str) -> Host:
        """One record; anything odd about it (a symlink, a special file, a huge or garbled file)
        is a CorruptRecord for this machine alone, never a hang or a traceback."""
        mdir = self.machine_dir(name)
        path = mdir / layout.CONFIG_JSON
        if not os.path.lexists(mdir):
            raise no_such_machine(name)
        if os.path.islink(mdir) or not mdir.is_dir():
            raise CorruptRecord(f"machine {name!r} is not a folder of the store (a link or a file)",
                                f"remove it with: machine rm -f {name}")
        if not os.path.lexists(path):
            raise CorruptRecord(f"machine {name!r} has no config.json", f"remove it with: machine rm -f {name}")
        from .model import Host

        try:
            raw = read_record_file(path)
            own_path = mdir / layout.MACHINE_JSON
            own = json.loads(read_record_file(own_path)) if os.path.lexists(own_path) else None
            host = Host.from_dict(json.loads(raw), store_path=self.path, own=own)
        except (ValueError, TypeError, AttributeError, RecursionError, OSError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)[:200]
            raise CorruptRecord(f"machine {name!r} has an unreadable record ({type(e).__name__}: {why})",
                                f"fix or remove {mdir} (machine rm -f {name})") from None
        if host.name != name:
            # docker-machine allowed renaming the folder; the folder name wins.
            host.name = name
        return host

    def load_all(self) -> list[tuple[str, Host | MachineError]]:
        """Every machine; a broken record is returned as its error, not raised."""
        out: list[tuple[str, Host | MachineError]] = []
        for name in self.names():
            try:
                out.append((name, self.load(name)))
            except MachineError as e:
                out.append((name, e))
        return out

    def save(self, host: Host) -> None:
        """Write machine.json (ours: the journal first, it is what rm needs) then config.json."""
        d = ensure_dir(self.machine_dir(host.name), PRIVATE_DIR)
        atomic_write_json(d / layout.MACHINE_JSON, host.own_dict(), mode=PRIVATE_FILE)
        atomic_write_json(d / layout.CONFIG_JSON, host.to_dict(), mode=PRIVATE_FILE)

    def reserve(self, name: str) -> Path:
        """Create the machine folder; fail if the machine already exists."""
        ensure_dir(self.path, PRIVATE_DIR)
        ensure_dir(self.machines_dir, PRIVATE_DIR)
        d = self.machine_dir(name)
        try:
            d.mkdir(mode=PRIVATE_DIR)
            os.chmod(d, PRIVATE_DIR)  # whatever the umask
        except FileExistsError:
            raise machine_exists(name) from None
        return d

    def remove(self, name: str) -> None:
        """Delete the machine folder; a link planted in its place goes, never what it points to."""
        d = self.machine_dir(name)
        if os.path.islink(d) or (os.path.lexists(d) and not d.is_dir()):
            d.unlink()
        else:
            shutil.rmtree(d, ignore_errors=True)
        try:
            (self.locks_dir / f"{name}.lock").unlink()
        except FileNotFoundError:
            pass

    # ---- certificates ---------------------------------------------------------
    def ensure_certs(self, key_type: str = "ecdsa", org: str = "machine") -> bool:
        """Create the CA and client certificate once, under the store lock; an existing pair is
        checked (a garbled CA or key is one line naming the file, never silently used)."""
        from . import certs

        if self.ca_cert().exists() and self.client_cert().exists() and self.client_key().exists():
            certs.check_client_pair(self.certs_dir)
            return False

        with self.store_lock():
            ensure_dir(self.certs_dir, PRIVATE_DIR)
            return certs.ensure_ca_and_client(self.certs_dir, org=org, key_type=key_type)
