"""Every stage finds a current warehouse: on a fresh database the owner's stage migrates it
first, and a stage running as another role stops with the command to run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner

from tieout import runs
from tieout.cli import cli
from tieout.db import migrate


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture
def unmigrated(new_database: Callable[[str], ContextManager[str]]) -> Iterator[str]:
    """A new, empty database: no ops schema, no migrations."""
    with new_database("tieout_fresh") as url:
        yield url


def test_stages_migrate_a_fresh_warehouse(unmigrated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEOUT_DATABASE_URL", unmigrated)
    result = CliRunner().invoke(cli, ["summary"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no run recorded yet"
    with runs.record_stage("fresh_run", "extract:crm.contacts", unmigrated) as figures:
        figures["rows"] = 1
    with psycopg.connect(unmigrated) as conn:
        (status,) = conn.execute(
            "select status from ops.stage_runs where run_id = 'fresh_run'"
        ).fetchone()
        assert status == "success"
        assert migrate.pending(conn) == []
    result = CliRunner().invoke(cli, ["findings", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no findings"


def test_a_stage_role_stops_with_the_command_to_run(unmigrated: str, server_url: str) -> None:
    role = f"tieout_test_stage_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create role "{role}" nologin')
    try:
        # connect as the test server's user, then act as the stage's role (not the owner)
        as_stage = with_database(unmigrated, unmigrated.rsplit("/", 1)[1].split("?")[0])
        as_stage += ("&" if "?" in as_stage else "?") + "options=" + quote(f"-c role={role}")
        env = {**os.environ, "TIEOUT_DATABASE_URL": as_stage}
        tieout = Path(sys.executable).with_name("tieout")
        result = subprocess.run(  # noqa: S603 - the project's own command
            [str(tieout), "summary"], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        first = migrate.available()[0]
        assert f"the warehouse lacks {len(migrate.available())} migration(s) (" in result.stderr
        assert f"{first.version}_{first.name}" in result.stderr
        assert f"role '{role}' does not own it: run `tieout db migrate`" in result.stderr
        with psycopg.connect(unmigrated) as conn:
            assert conn.execute("select to_regnamespace('ops')").fetchone() == (None,)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{urlsplit(unmigrated).path[1:]}" with (force)')
            conn.execute(f'drop role if exists "{role}"')
