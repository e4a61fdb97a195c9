"""The embedded server: starts from nothing, is reused, and steps around a taken port."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tieout import db
from tieout.db import embedded


@pytest.fixture
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TIEOUT_DATABASE_URL", raising=False)
    yield tmp_path / "state"
    embedded.destroy()


def test_taken_port_is_named_and_avoided(
    private_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    monkeypatch.setenv("TIEOUT_EMBEDDED_PORT", str(taken))
    try:
        server, note = embedded.start()
    finally:
        holder.close()
    assert server.running
    assert server.port != taken
    assert note is not None
    assert f"port {taken} is held by pid" in note
    assert f"pid {os.getpid()} (" in note
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    again, second_note = embedded.start()
    assert (again.pid, again.port, second_note) == (server.pid, server.port, None)
    assert embedded.stop() is True
    assert embedded.status().running is False


def test_unreachable_url_names_host_and_port_not_password() -> None:
    env = {"TIEOUT_DATABASE_URL": "postgresql://analyst:hunter2secret@127.0.0.1:1/warehouse"}

    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "cannot reach the warehouse at 127.0.0.1:1" in result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_logins_need_their_password_which_stays_in_a_0600_file(
    private_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for role in db.ROLES:
        monkeypatch.delenv("AIRFLOW_CONN_" + db.role_connection_id(role).upper(), raising=False)
    monkeypatch.setenv("TIEOUT_EMBEDDED_PORT", str(_free_port()))
    server, _ = embedded.start()
    assert stat.S_IMODE(embedded.passwords_file().stat().st_mode) == 0o600
    bare = f"127.0.0.1:{server.port}/tieout"
    for user in ("postgres", "tieout_loader", "tieout_finance"):
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(f"postgresql://{user}@{bare}", connect_timeout=5)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"postgresql://{user}:not-the-password@{bare}", connect_timeout=5)

    embedded.stop()  # the rules and passwords hold across a restart
    server, _ = embedded.start()
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    loader = db.role_url("loader", server.url())
    with db.connect(loader) as conn:  # the stage role's password comes from the file
        assert conn.execute("select current_user").fetchone() == ("tieout_loader",)

    shown = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "db", "url"],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = embedded.password("postgres")
    assert secret and secret not in shown.stdout + shown.stderr
    assert shown.stdout.strip() == f"postgresql://postgres:***@127.0.0.1:{server.port}/tieout"
