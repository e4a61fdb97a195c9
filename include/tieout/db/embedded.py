"""The embedded PostgreSQL: a real server from the pgserver wheel, kept in the state folder.

It exists so tieout runs with nothing installed but Python. It must never touch a
database the user configured, and never throw away data it did not create.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from tieout.paths import state_dir

DEFAULT_PORT = 54329
DATABASES = ("tieout", "airflow")
SYSTEM_USER = "pgserver"  # postgres refuses to run as root; pgserver's convention
OWNER = "postgres"
# Over TCP every role needs its password; the unix socket (mode 0700, in the state folder)
# trusts the owner only, for the server's own housekeeping.
HBA_MARKER = "# tieout: passwords over TCP"
PG_HBA = f"""{HBA_MARKER} (scram-sha-256); rewritten at every start, edits are lost
local all {OWNER} trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


class EmbeddedError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int
    data_dir: Path
    log_file: Path

    def url(self, database: str = "tieout", user: str = OWNER) -> str:
        """The TCP URL for `user`, with its password from the state folder (redact to print)."""
        secret = password(user)
        auth = quote(user, safe="") + (":" + quote(secret, safe="") if secret else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"


def _bin(name: str) -> str:
    return str(_bin_dir() / name)


def _bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # pgserver asks platformdirs for a runtime dir it never uses
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _root() -> Path:
    path = state_dir() / "pg"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_dir() -> Path:
    return _root() / "data"


def _log_file() -> Path:
    return _root() / "postgres.log"


def _port_file() -> Path:
    return _root() / "port"


def passwords_file() -> Path:
    """Every login role's password on this server, readable by the file's owner only (0600)."""
    return _root() / "passwords.json"


def _read_passwords() -> dict[str, str]:
    try:
        data = json.loads(passwords_file().read_text() or "{}")
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def password(user: str) -> str | None:
    """The password of `user` on the embedded server, None before the server made one."""
    return _read_passwords().get(user)


def serves(url: str) -> bool:
    """True when `url` points at this state folder's embedded server (loopback, its port)."""
    parts = urlsplit(url)
    return (
        parts.hostname in {"127.0.0.1", "localhost", "::1"}
        and parts.port == _saved_port()
        and passwords_file().exists()
    )


def _ensure_passwords(users: list[str]) -> dict[str, str]:
    """Generate a password for every user that has none yet; the file is created 0600."""
    known = _read_passwords()
    missing = [user for user in users if user not in known]
    if missing:
        known.update({user: secrets.token_urlsafe(24) for user in missing})
        temporary = passwords_file().with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(known, handle, indent=2, sort_keys=True)
        temporary.replace(passwords_file())
    passwords_file().chmod(0o600)
    return known


def _socket_dir() -> Path:
    """Unix sockets need a short path (about 100 bytes); fall back to /tmp if ours is long."""
    preferred = _root() / "sock"
    if len(str(preferred)) < 80:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path("/tmp") / f"tieout-pg-{digest}"  # noqa: S108 - socket dir, path length limit


def _run_as() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    with open(_root() / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid() -> int | None:
    pidfile = _data_dir() / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _saved_port() -> int:
    try:
        return int(_port_file().read_text().strip())
    except (FileNotFoundError, ValueError):
        return int(os.environ.get("TIEOUT_EMBEDDED_PORT", DEFAULT_PORT))


def status() -> ServerStatus:
    return ServerStatus(
        running=_pid() is not None,
        pid=_pid(),
        port=_saved_port(),
        data_dir=_data_dir(),
        log_file=_log_file(),
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Name the process listening on a port, if the OS lets us see it."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()})"
    except Exception:  # noqa: BLE001, S110 - best effort diagnostics only
        pass
    return "an unknown process"


def _choose_port(wanted: int) -> tuple[int, str | None]:
    if _port_is_free(wanted):
        return wanted, None
    note = f"port {wanted} is held by {port_holder(wanted)}"
    for candidate in range(wanted + 1, wanted + 200):
        if _port_is_free(candidate):
            return candidate, f"{note}; the embedded PostgreSQL uses port {candidate} instead"
    raise EmbeddedError(f"{note}, and no free port was found in {wanted + 1}..{wanted + 199}")


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach files below a root-owned tree."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if mode != wanted:
            parent.chmod(wanted)


def _prepare_user_and_dirs() -> None:
    user = _run_as()
    if user is None:
        return
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
    entry = pwd.getpwnam(user)
    _make_traversable(_bin_dir())
    _make_traversable(_root())
    for path in (_data_dir(), _socket_dir()):
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    _data_dir().chmod(0o700)
    _log_file().touch()
    os.chown(_log_file(), entry.pw_uid, entry.pw_gid)


def _pg(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, capture_output=True, text=True, timeout=timeout, user=_run_as()
    )


def _initdb() -> None:
    if (_data_dir() / "PG_VERSION").exists():
        return
    _data_dir().mkdir(parents=True, exist_ok=True)
    _prepare_user_and_dirs()
    result = _pg(
        [
            _bin("initdb"),
            "-D",
            str(_data_dir()),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-locale",
        ]
    )
    if result.returncode != 0:
        raise EmbeddedError(f"initdb failed in {_data_dir()}: {result.stderr.strip()}")


def shared_buffers_mb() -> int:
    """An eighth of the machine's memory, between 128 MB and 1 GB."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 256
    return max(128, min(1024, memory // 8 // (1 << 20)))


def start() -> tuple[ServerStatus, str | None]:
    """Start (or reuse) the embedded server. Returns its status and a note about the port."""
    with _lock():
        current = status()
        if current.running:
            if not _auth_is_current():  # a server started before passwords were required
                _write_hba()
                _pg([_bin("pg_ctl"), "-D", str(_data_dir()), "reload"])
                _apply_passwords(current.port)
            return current, None
        _initdb()
        _prepare_user_and_dirs()
        _write_hba()
        port, note = _choose_port(_saved_port())
        options = " ".join(
            [
                "-h 127.0.0.1",
                f"-p {port}",
                f"-k {_socket_dir()}",
                "-c unix_socket_permissions=0700",
                "-c password_encryption=scram-sha-256",
                "-c max_connections=300",
                f"-c shared_buffers={shared_buffers_mb()}MB",
                "-c work_mem=32MB",
                "-c maintenance_work_mem=256MB",
                "-c synchronous_commit=off",
                # bulk loads write GBs: fewer, later checkpoints keep COPY from stalling on
                # them (1M raw rows: 97k -> 136k rows/s with these and 1 GB of buffers)
                "-c max_wal_size=4GB",
                "-c checkpoint_timeout=15min",
                "-c wal_buffers=64MB",
            ]
        )
        result = _pg(
            [
                _bin("pg_ctl"),
                "-D",
                str(_data_dir()),
                "-l",
                str(_log_file()),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if result.returncode != 0:
            tail = "\n".join(_log_file().read_text(errors="replace").splitlines()[-15:])
            raise EmbeddedError(
                f"the embedded PostgreSQL did not start (data in {_data_dir()}):\n{tail}"
            )
        _port_file().write_text(str(port))
        _apply_passwords(port)
        _create_databases(port)
        return status(), note


def _login_roles() -> list[str]:
    from tieout.db import ROLES

    return [OWNER, *ROLES.values()]


def _auth_is_current() -> bool:
    hba = _data_dir() / "pg_hba.conf"
    try:
        written = hba.read_text().startswith(HBA_MARKER)
    except (FileNotFoundError, PermissionError):
        return False
    return written and set(_login_roles()) <= set(_read_passwords())


def _write_hba() -> None:
    (_data_dir() / "pg_hba.conf").write_text(PG_HBA)


def _apply_passwords(port: int) -> None:
    """Give the owner and every stage role its password (creating the role if missing).

    Only SCRAM verifiers computed here reach the server, so no password is ever in a
    statement the server could log.
    """
    import psycopg
    from psycopg import errors, sql

    passwords = _ensure_passwords(_login_roles())
    with psycopg.connect(
        host=str(_socket_dir()), port=port, user=OWNER, dbname="postgres", autocommit=True
    ) as conn:
        for user in _login_roles():
            if (
                user != OWNER
                and not conn.execute(
                    "select 1 from pg_roles where rolname = %s", (user,)
                ).fetchone()
            ):
                with contextlib.suppress(errors.DuplicateObject, errors.UniqueViolation):
                    conn.execute(sql.SQL("create role {} login").format(sql.Identifier(user)))
            verifier = conn.pgconn.encrypt_password(
                passwords[user].encode(), user.encode(), b"scram-sha-256"
            )
            conn.execute(
                sql.SQL("alter role {} with login password {}").format(
                    sql.Identifier(user), sql.Literal(verifier.decode())
                )
            )


def _create_databases(port: int) -> None:
    import psycopg

    with psycopg.connect(
        host=str(_socket_dir()), port=port, user=OWNER, dbname="postgres", autocommit=True
    ) as conn:
        existing = {row[0] for row in conn.execute("select datname from pg_database")}
        for name in DATABASES:
            if name not in existing:
                conn.execute(f'create database "{name}"')


def stop() -> bool:
    with _lock():
        if _pid() is None:
            return False
        result = _pg([_bin("pg_ctl"), "-D", str(_data_dir()), "-m", "fast", "-w", "stop"])
        if result.returncode != 0:
            raise EmbeddedError(f"pg_ctl stop failed: {result.stderr.strip()}")
        return True


def psql_path() -> str:
    return _bin("psql")


def destroy() -> None:
    """Stop the server and delete its data. Only for tests and `tieout db reset`."""
    stop()
    shutil.rmtree(_root(), ignore_errors=True)
