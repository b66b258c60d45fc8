"""One paramiko connection per host: run commands, send files, wait for SSH, pin host keys.

A provision opens ONE `Connection` and does everything over it: commands are
batched into scripts (`run_script` sends a whole script to `sh -s` in one exec),
files go over SFTP on the same transport.

Host-key policy (the machine's own known_hosts file, 0600):
  * a key already recorded for HOST:PORT must match, always; a different key is
    refused with HostKeyMismatch (fingerprints attached for --debug);
  * with `pin=True` an unknown host's key is recorded on first contact;
  * with `pin=False` an unknown host is refused: nothing was pinned to check against;
  * with `expected_fingerprint` (the fingerprint the machine's record holds) the
    host's key must have that fingerprint, whatever known_hosts says and even
    when the file is missing: a lost known_hosts file never turns into
    trust-on-first-use, and nothing is ever re-pinned silently.

Every command runs under `env LANG=C LC_ALL=C ... sh -c CMD`, so output is in the
C locale whatever the login shell, and callers retry on exit codes, not on text.

Only verbs that talk SSH import this module (paramiko costs ~140 ms to import).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import shlex
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko

from .driver import SSHEndpoint
from .errors import HostKeyMismatch, MachineError, UsageError
from .fsutil import PRIVATE_FILE, atomic_write, read_small_file

# paramiko logs every failed attempt of the SSH wait (banner errors while sshd starts)
# as tracebacks; we report the last real error ourselves. --debug's root handler still
# shows them; without it they must not reach the user's terminal.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = bool(logging.getLogger().handlers)

KEEPALIVE_S = 15
STDERR_TAIL_LINES = 12

#: process-wide counters, for bench and for tests that count connections
stats = {"connections": 0, "attempts": 0}


class CommandFailed(MachineError):
    """A remote command exited non-zero; `result.exit_status` is what to retry on."""

    def __init__(self, message: str, result: "Result", hint: str | None = None):
        super().__init__(message, hint)
        self.result = result

    @property
    def exit_status(self) -> int:
        return self.result.exit_status


class CommandTimeout(MachineError):
    pass


class ConnectionLost(MachineError):
    pass


class AuthFailed(MachineError):
    pass


class UnknownHostKey(MachineError):
    pass


@dataclass
class Result:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def tail(self, n: int = STDERR_TAIL_LINES) -> str:
        text = (self.stderr.strip() or self.stdout.strip())
        return "\n".join(text.splitlines()[-n:])


# --------------------------------------------------------------------------- helpers


def fingerprint(key: paramiko.PKey) -> str:
    """SHA256 fingerprint exactly as OpenSSH prints it: SHA256:<base64, no padding>."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _summary(cmd: str, limit: int = 80) -> str:
    first = cmd.strip().splitlines()[0] if cmd.strip() else cmd
    return first if len(first) <= limit else first[: limit - 3] + "..."


MAX_KEY_BYTES = 1 << 20


def load_private_key(path: str | os.PathLike) -> paramiko.PKey:
    """The private key at path; any failure is one MachineError line naming the file."""
    try:
        data = read_small_file(path, MAX_KEY_BYTES)  # a FIFO or /dev/zero fails at once
    except FileNotFoundError:
        raise MachineError(f"SSH key {path} does not exist",
                           "pass an existing private key, or re-create the machine") from None
    except ValueError as e:
        raise MachineError(f"cannot read SSH key {path}: {e}", "pass the path of a private key file") from None
    except OSError as e:
        raise MachineError(f"cannot read SSH key {path}: {e.strerror or e}", "check its permissions") from None
    if not data.strip():
        raise MachineError(f"cannot read SSH key {path}: the file is empty",
                           "pass a private key file (e.g. made by ssh-keygen)")
    try:
        return paramiko.PKey.from_path(str(path))
    except paramiko.PasswordRequiredException:
        raise MachineError(f"SSH key {path} is protected by a passphrase",
                           "use a key without a passphrase, or load it into ssh-agent") from None
    except Exception as e:  # noqa: BLE001 - garbled keys surface as many exception types
        raise MachineError(f"cannot read SSH key {path}: {_one_line(e)}",
                           "check that it is an unencrypted private key (not a .pub or a certificate)") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def check_port(port, what: str = "SSH port") -> int:
    """The port as an int in 1..65535, else UsageError (never wrapped modulo 65536)."""
    try:
        if isinstance(port, bool) or isinstance(port, float):
            raise ValueError
        value = int(str(port).strip()) if isinstance(port, str) else int(port)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {what} {port!r}", "use a whole number from 1 to 65535") from None
    if not 1 <= value <= 65535:
        raise UsageError(f"invalid {what} {port!r}: out of range", "use a whole number from 1 to 65535")
    return value


def check_seconds(value, what: str, *, allow_zero: bool = False) -> float:
    """A finite, positive number of seconds (or zero where allowed), else UsageError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        f = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {what} {value!r}", "give a number of seconds") from None
    if f != f or f in (float("inf"), float("-inf")) or f < 0 or (f == 0 and not allow_zero):
        raise UsageError(f"invalid {what} {value!r}",
                         "give a finite number of seconds, more than 0" if not allow_zero
                         else "give a finite number of seconds, 0 or more")
    return f


def normalize_fingerprint(fp: str) -> str:
    """'SHA256:abc', 'ssh-ed25519 SHA256:abc' or 'SHA256:abc=' -> 'SHA256:abc'."""
    token = (fp or "").strip().split()[-1] if (fp or "").strip() else ""
    if token.upper().startswith("SHA256:"):
        token = "SHA256:" + token[7:].rstrip("=")
    return token


def _candidate_keys(key_path: str | None) -> list[paramiko.PKey]:
    if key_path:
        return [load_private_key(key_path)]
    keys: list[paramiko.PKey] = []
    try:
        keys.extend(paramiko.Agent().get_keys())
    except Exception:  # no agent, or a broken one: fall back to default key files
        pass
    home = Path.home() / ".ssh"
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        p = home / name
        if p.exists():
            try:
                keys.append(paramiko.PKey.from_path(str(p)))
            except Exception:
                continue
    return keys


class HostKeys:
    """The machine's own known_hosts file; written atomically, 0600."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.keys = paramiko.HostKeys()
        if self.path.exists():
            try:
                self.keys.load(str(self.path))
            except (OSError, paramiko.SSHException) as e:
                raise MachineError(f"cannot read {self.path}: {e}",
                                   f"fix or remove {self.path}") from None

    def lookup(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        entry = self.keys.lookup(known_hosts_name(host, port))
        return dict(entry) if entry else {}

    def add(self, host: str, port: int, key: paramiko.PKey) -> None:
        self.keys.add(known_hosts_name(host, port), key.get_name(), key)
        # OpenSSH's known_hosts format, written like every other store file (atomic, 0600).
        lines = [f"{name} {ktype} {k.get_base64()}\n"
                 for name, entry in self.keys.items() for ktype, k in entry.items()]
        atomic_write(self.path, "".join(lines), mode=PRIVATE_FILE)

    def check(self, host: str, port: int, key: paramiko.PKey, *, pin: bool,
              hint: str | None, expected_fingerprint: str = "") -> bool:
        """True when the key was newly pinned; raises on mismatch / unknown.

        `expected_fingerprint` (from the machine's record) is checked first and
        always: a different key is refused even when known_hosts is missing or
        `pin` is set. When it matches and known_hosts lacks the entry, the entry
        is written back (the same key, so nothing is re-pinned).
        """
        where = f"{host}:{port}"
        presented = fingerprint(key)
        expected = normalize_fingerprint(expected_fingerprint)
        if expected and presented != expected:
            err = HostKeyMismatch(
                f"host key for {where} is not the one recorded for this machine: "
                f"expected {expected}, host presented {key.get_name()} {presented}", hint)
            err.expected_fingerprints = [expected]
            err.presented_fingerprint = f"{key.get_name()} {presented}"
            err.known_hosts = str(self.path)
            err.debug = (f"expected {expected} (from the machine's record"
                         f"{'' if self.path.exists() else f'; {self.path} is missing'}); "
                         f"host presented {err.presented_fingerprint}")
            raise err
        known = self.lookup(host, port)
        if known:
            same_type = known.get(key.get_name())
            if same_type is not None and same_type.asbytes() == key.asbytes():
                return False
            # a different key, or a key of a type we never pinned: refuse both
            err = HostKeyMismatch(f"host key for {where} changed", hint)
            err.expected_fingerprints = [f"{t} {fingerprint(k)}" for t, k in known.items()]
            err.presented_fingerprint = f"{key.get_name()} {presented}"
            err.known_hosts = str(self.path)
            err.debug = (f"expected {', '.join(err.expected_fingerprints)} (from {self.path}); "
                         f"host presented {err.presented_fingerprint}")
            raise err
        if expected:
            # the record vouches for this very key: restore the lost known_hosts entry
            self.add(host, port, key)
            return False
        if not pin:
            err = UnknownHostKey(f"no host key pinned for {where}", hint)
            err.presented_fingerprint = f"{key.get_name()} {presented}"
            err.debug = f"host presented {err.presented_fingerprint}; {self.path} has no entry"
            raise err
        self.add(host, port, key)
        return True


# --------------------------------------------------------------------------- connection


class Connection:
    """One SSH transport to a host, used for a whole provision."""

    def __init__(self, transport: paramiko.Transport, endpoint: SSHEndpoint, *,
                 host_key_fingerprint: str = "", pinned: bool = False):
        self.transport = transport
        self.endpoint = endpoint
        self.host_key_fingerprint = host_key_fingerprint
        self.pinned = pinned          # True when this connection pinned the key
        self.round_trips = 0
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()

    # ---- basics --------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.endpoint.user == "root"

    @property
    def where(self) -> str:
        return f"{self.endpoint.user}@{self.endpoint.host}:{self.endpoint.port}"

    def is_active(self) -> bool:
        return self.transport.is_active()

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:
                pass
            self._sftp = None
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wrap(self, inner: str, *, sudo: bool = False, env: dict | None = None) -> str:
        """The exec line: `[sudo -n] env LANG=C LC_ALL=C K=V... <inner>`."""
        assigns = ["LANG=C", "LC_ALL=C"]
        for k, v in (env or {}).items():
            if not k.replace("_", "a").isalnum() or k[0].isdigit():
                raise MachineError(f"invalid environment variable name {k!r}")
            assigns.append(f"{k}={shlex.quote(str(v))}")
        line = "env " + " ".join(assigns) + " " + inner
        if sudo and not self.is_root:
            line = "sudo -n " + line
        return line

    # ---- commands ------------------------------------------------------
    def run(self, cmd: str, *, sudo: bool = False, check: bool = True,
            input: bytes | str | None = None, env: dict | None = None,
            timeout: float | None = None) -> Result:
        """Run one command through `sh -c`; returns Result, raises CommandFailed on check."""
        return self._exec(self.wrap("sh -c " + shlex.quote(cmd), sudo=sudo, env=env),
                          what=cmd, check=check, input=input, timeout=timeout)

    def run_script(self, script: str, *, sudo: bool = False, check: bool = True,
                   timeout: float | None = None, env: dict | None = None,
                   args: list[str] | tuple = ()) -> Result:
        """Send a whole script to `sh -s` over stdin: one exec, one round trip."""
        line = self.wrap("sh -s", sudo=sudo, env=env)
        if args:
            line += " -- " + " ".join(shlex.quote(str(a)) for a in args)
        return self._exec(line, what=script, check=check, input=script, timeout=timeout)

    def _exec(self, line: str, *, what: str, check: bool, input, timeout) -> Result:
        if timeout is not None:
            timeout = check_seconds(timeout, "command timeout")
        if not self.transport.is_active():
            raise ConnectionLost(f"SSH connection to {self.where} is closed")
        try:
            chan = self.transport.open_session(timeout=30)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectionLost(f"SSH connection to {self.where} lost: {e}") from None
        self.round_trips += 1
        out: list[bytes] = []
        err: list[bytes] = []

        def reader(recv, sink):
            try:
                while True:
                    data = recv(65536)
                    if not data:
                        return
                    sink.append(data)
            except Exception:
                return

        try:
            chan.exec_command(line)
            t_out = threading.Thread(target=reader, args=(chan.recv, out), daemon=True)
            t_err = threading.Thread(target=reader, args=(chan.recv_stderr, err), daemon=True)
            t_out.start()
            t_err.start()
            if input is not None:
                if isinstance(input, str):
                    input = input.encode()
                chan.sendall(input)
            chan.shutdown_write()
            deadline = None if timeout is None else time.monotonic() + timeout
            while not chan.status_event.wait(0.2):
                if not self.transport.is_active():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    chan.close()
                    raise CommandTimeout(f"command timed out after {timeout:g}s on {self.where}: "
                                         f"{_summary(what)}")
            t_out.join(5)
            t_err.join(5)
        except (socket.error, EOFError, paramiko.SSHException) as e:
            raise ConnectionLost(f"SSH connection to {self.where} lost during: {_summary(what)} ({e})") from None
        status = chan.exit_status if chan.exit_status_ready() else -1
        chan.close()
        result = Result(status, b"".join(out).decode("utf-8", "replace"),
                        b"".join(err).decode("utf-8", "replace"))
        if status == -1:
            raise ConnectionLost(f"SSH connection to {self.where} lost during: {_summary(what)}",
                                 None)
        if check and status != 0:
            tail = result.tail()
            msg = f"command failed (exit {status}) on {self.where}: {_summary(what)}"
            if tail:
                msg += "\n" + tail
            raise CommandFailed(msg, result)
        return result

    # ---- files ---------------------------------------------------------
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self.transport.open_sftp_client()
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ConnectionLost(f"cannot open SFTP to {self.where}: {e}") from None
        return self._sftp

    def put(self, data: bytes | str | Path, remote_path: str, mode: int = 0o644, *,
            sudo: bool = False, owner: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> None:
        """Write a file on the host over SFTP (same transport).

        With sudo and a non-root user: upload to a private temp path, then
        `sudo install -m MODE` into place (one extra exec).
        """
        direct = not sudo or self.is_root
        target = remote_path if direct else f"/tmp/.machine-put-{uuid.uuid4().hex}"
        tmp = target if not direct else f"{remote_path}.machine-tmp"
        sftp = self.sftp()
        self.round_trips += 1
        try:
            if isinstance(data, (str, bytes)):
                payload = data.encode() if isinstance(data, str) else data
                import io
                fo = io.BytesIO(payload)
                size = len(payload)
            else:
                fo = open(data, "rb")
                size = os.fstat(fo.fileno()).st_size
            try:
                # create with a private mode first so a key is never world-readable
                with sftp.open(tmp, "wb") as f:
                    f.set_pipelined(True)
                    sftp.chmod(tmp, 0o600)
                    sent = 0
                    while True:
                        chunk = fo.read(32768)
                        if not chunk:
                            break
                        f.write(chunk)
                        sent += len(chunk)
                        if progress:
                            progress(sent, size)
            finally:
                fo.close()
            if direct:
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, remote_path)
        except IOError as e:
            if not self.transport.is_active():
                raise ConnectionLost(f"SSH connection to {self.where} lost while sending {remote_path}") from None
            raise MachineError(f"cannot write {remote_path} on {self.where}: {e}") from None
        if not direct:
            chown = f" -o {shlex.quote(owner)}" if owner else " -o root -g root"
            self.run(f"install -m {mode:o}{chown} {shlex.quote(target)} {shlex.quote(remote_path)}; "
                     f"rc=$?; rm -f {shlex.quote(target)}; exit $rc", sudo=True)

    def put_stream(self, remote_path: str, write: Callable[[object], None], mode: int = 0o600) -> None:
        """Stream data into a remote file over SFTP: `write(fileobj)` writes to it (pipelined)."""
        sftp = self.sftp()
        self.round_trips += 1
        try:
            with sftp.open(remote_path, "wb") as f:
                sftp.chmod(remote_path, mode)
                f.set_pipelined(True)
                write(f)
        except (IOError, EOFError, paramiko.SSHException) as e:
            if not self.transport.is_active():
                raise ConnectionLost(f"SSH connection to {self.where} lost while sending {remote_path}") from None
            raise MachineError(f"cannot write {remote_path} on {self.where}: {e}") from None

    def get(self, remote_path: str, local_path: str | os.PathLike) -> None:
        self.round_trips += 1
        try:
            self.sftp().get(remote_path, str(local_path))
        except IOError as e:
            raise MachineError(f"cannot read {remote_path} on {self.where}: {e}") from None

    # ---- interactive ---------------------------------------------------
    def interactive(self, command: str | None = None) -> int:
        """A shell (or command) with a PTY when stdin is a terminal; returns its exit status."""
        chan = self.transport.open_session()
        self.round_trips += 1
        tty = sys.stdin.isatty()
        if tty:
            cols, rows = _term_size()
            chan.get_pty(term=os.environ.get("TERM", "xterm"), width=cols, height=rows)
        if command is None:
            chan.invoke_shell()
        else:
            chan.exec_command(command)
        if tty:
            return _interactive_tty(chan)
        return _interactive_pipe(chan)


def _term_size() -> tuple[int, int]:
    try:
        sz = os.get_terminal_size(sys.stdout.fileno())
        return (sz.columns or 80), (sz.lines or 24)
    except OSError:
        return 80, 24


def _interactive_tty(chan: paramiko.Channel) -> int:
    import select
    import signal
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)

    def resize(*_):
        cols, rows = _term_size()
        try:
            chan.resize_pty(width=cols, height=rows)
        except Exception:
            pass

    prev = signal.signal(signal.SIGWINCH, resize)
    try:
        tty.setraw(fd)
        while True:
            r, _, _ = select.select([chan, fd], [], [], 0.5)
            if chan in r:
                data = chan.recv(32768)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if fd in r:
                data = os.read(fd, 4096)
                if not data:
                    chan.shutdown_write()
                else:
                    chan.sendall(data)
            if chan.exit_status_ready() and not chan.recv_ready():
                break
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        signal.signal(signal.SIGWINCH, prev)
    return chan.recv_exit_status()


def _interactive_pipe(chan: paramiko.Channel) -> int:
    def pump_in():
        try:
            while True:
                data = os.read(sys.stdin.fileno(), 32768)
                if not data:
                    break
                chan.sendall(data)
        except (OSError, ValueError):
            pass
        try:
            chan.shutdown_write()
        except Exception:
            pass

    def pump(recv, fileno):
        while True:
            data = recv(32768)
            if not data:
                return
            os.write(fileno, data)

    threading.Thread(target=pump_in, daemon=True).start()
    t_err = threading.Thread(target=pump, args=(chan.recv_stderr, sys.stderr.fileno()), daemon=True)
    t_err.start()
    pump(chan.recv, sys.stdout.fileno())
    t_err.join(5)
    return chan.recv_exit_status()


# --------------------------------------------------------------------------- connect


def connect(endpoint: SSHEndpoint, known_hosts: str | os.PathLike, *, timeout: float = 10,
            pin: bool = False, hint: str | None = None, expected_fingerprint: str = "") -> Connection:
    """Open and authenticate one SSH connection, checking the host key first.

    `expected_fingerprint` is the host key fingerprint the machine's record holds
    (Host.machine.ssh_key_fingerprint): pass it whenever there is one, so a
    missing known_hosts file is not trust-on-first-use.

    Raises OSError / socket.timeout / paramiko.SSHException for the transient
    failures wait_for_ssh retries; AuthFailed, HostKeyMismatch, UnknownHostKey and
    MachineError for the ones it must not retry; UsageError for a bad port or timeout.
    """
    port = check_port(endpoint.port)
    timeout = check_seconds(timeout, "SSH timeout")
    stats["attempts"] += 1
    sock = socket.create_connection((endpoint.host, port), timeout=timeout)
    transport = None
    try:
        sock.settimeout(timeout)
        transport = paramiko.Transport(sock)
        hostkeys = HostKeys(known_hosts)
        known_types = []
        for t in hostkeys.lookup(endpoint.host, port):
            known_types += ["rsa-sha2-512", "rsa-sha2-256", t] if t == "ssh-rsa" else [t]
        if known_types:
            # ask for the key type we pinned, so a host with several keys presents that one
            opts = transport.get_security_options()
            supported = list(opts.key_types)
            opts.key_types = [t for t in known_types if t in supported] + \
                             [t for t in supported if t not in known_types]
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        pinned = hostkeys.check(endpoint.host, port, key, pin=pin, hint=hint,
                                expected_fingerprint=expected_fingerprint)
        pkeys = _candidate_keys(endpoint.key_path)
        if not pkeys:
            raise AuthFailed(f"no SSH key to log in to {endpoint.user}@{endpoint.host}:{endpoint.port}",
                             "give the machine an SSH key (its driver's --*-ssh-key option)")
        last: Exception | None = None
        for pk in pkeys:
            try:
                transport.auth_publickey(endpoint.user, pk)
                break
            except paramiko.AuthenticationException as e:
                last = e
        if not transport.is_authenticated():
            which = endpoint.key_path or "the agent's and ~/.ssh keys"
            allowed = getattr(last, "allowed_types", None)
            extra = f" (the host allows only: {', '.join(allowed)})" if allowed else ""
            raise AuthFailed(
                f"SSH authentication failed for {endpoint.user}@{endpoint.host}:{endpoint.port} "
                f"with key {which}{extra}",
                "check the SSH user and that the key's public half is in the host's authorized_keys")
        sock.settimeout(None)
        transport.set_keepalive(KEEPALIVE_S)
        stats["connections"] += 1
        return Connection(transport, endpoint, host_key_fingerprint=fingerprint(key), pinned=pinned)
    except BaseException:
        if transport is not None:
            transport.close()
        sock.close()
        raise


def describe_error(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "connection timed out"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host ({e.strerror or e})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[:1].lower() + e.strerror[1:]
    if isinstance(e, EOFError):
        return "connection closed by the host during the SSH handshake"
    return str(e) or type(e).__name__


def wait_for_ssh(endpoint: SSHEndpoint, known_hosts: str | os.PathLike, *, deadline_s: float,
                 pin: bool, hint: str | None = None, interval: float = 1.0,
                 on_attempt: Callable[[int, str | None], None] | None = None,
                 expected_fingerprint: str = "",
                 gone: Callable[[], str | None] | None = None, gone_every_s: float = 10.0) -> Connection:
    """Connect, retrying transient failures until the deadline; report the last real error.

    `gone()` (asked at most every `gone_every_s` while retrying) says why the host can no
    longer answer — its VM stopped — or None: a dead VM fails now, not at the deadline.

    Retried: connection refused/reset, timeouts, unreachable, banner/handshake
    errors (sshd still starting). Not retried: authentication failure, host key
    mismatch (against known_hosts or `expected_fingerprint`), unknown host key
    without pin, unreadable key file (checked before the first attempt), a bad
    port, deadline or interval (UsageError).
    """
    check_port(endpoint.port)
    deadline_s = check_seconds(deadline_s, "SSH wait deadline", allow_zero=True)
    interval = check_seconds(interval, "SSH retry interval")
    if endpoint.key_path:
        load_private_key(endpoint.key_path)  # a key that can never work fails now, not at the deadline
    start = time.monotonic()
    end = start + deadline_s
    attempt = 0
    last: str | None = None
    next_probe = start + gone_every_s
    where = f"{endpoint.user}@{endpoint.host}:{endpoint.port}"
    while True:
        attempt += 1
        remaining = end - time.monotonic()
        try:
            return connect(endpoint, known_hosts, timeout=max(1.0, min(10.0, remaining)),
                           pin=pin, hint=hint, expected_fingerprint=expected_fingerprint)
        except MachineError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as e:
            last = describe_error(e)
        if on_attempt:
            on_attempt(attempt, last)
        if gone is not None and time.monotonic() >= next_probe:
            next_probe = time.monotonic() + gone_every_s
            try:
                why = gone()
            except Exception:  # a failed probe proves nothing: keep waiting until the deadline
                why = None
            if why:
                raise MachineError(f"SSH to {where} cannot answer: {why} (last error: {last})",
                                   "see why it stopped (for a local VM: its console.log), then retry")
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    raise MachineError(
        f"SSH to {where} not ready after {deadline_s:g}s ({attempt} attempts); last error: {last}",
        "check that the host is running and reachable, or raise the SSH wait deadline")
