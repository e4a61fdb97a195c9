"""The warehouse connection string is accepted as a URL or as libpq keywords, and its password
is never printed, wherever in the string it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tieout import db
from tieout.cli import cli

SECRET = "s3cr;et pw"


@pytest.mark.parametrize(
    ("configured", "printed"),
    [
        (
            "postgresql://tieout@db.example:5433/warehouse?password=s3cr%3Bet+pw&sslmode=require",
            "postgresql://tieout@db.example:5433/warehouse?password=***&sslmode=require",
        ),
        (
            "postgresql://tieout:s3cr%3Bet%20pw@db.example:5433/warehouse",
            "postgresql://tieout:***@db.example:5433/warehouse",
        ),
        (
            "host=db.example port=5433 user=tieout password='s3cr;et pw' dbname=warehouse "
            "sslmode=require",
            "postgresql://tieout:***@db.example:5433/warehouse?sslmode=require",
        ),
        (
            "host=/run/postgresql user=tieout password='s3cr;et pw' dbname=warehouse",
            "postgresql://tieout:***@/warehouse?host=/run/postgresql",
        ),
    ],
)
def test_db_url_redacts_the_password(
    monkeypatch: pytest.MonkeyPatch, configured: str, printed: str
) -> None:
    monkeypatch.setenv(db.ENV_URL, configured)
    result = CliRunner().invoke(cli, ["db", "url"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == printed
    assert "s3cr" not in result.output


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        (
            "postgresql+psycopg2://airflow:s3cr%3Bet@127.0.0.1:5432/airflow",
            "postgresql+psycopg2://airflow:***@127.0.0.1:5432/airflow",
        ),
        (
            "postgresql+psycopg2://postgres@/airflow?host=/srv/tieout/pg",
            "postgresql+psycopg2://postgres@/airflow?host=/srv/tieout/pg",
        ),
    ],
)
def test_airflow_metadata_urls_are_redacted_too(url: str, printed: str) -> None:
    """SQLAlchemy's scheme is no libpq URL, but the demo prints Airflow's metadata URL."""
    assert db.redact(url) == printed


def test_keyword_string_reaches_the_same_server_as_the_url() -> None:
    keywords = "host=db.example port=5433 user=tieout password='s3cr;et pw' dbname=warehouse"
    url = db._from_airflow_uri(keywords)
    assert db.conninfo_params(url) == db.conninfo_params(keywords)
    assert db.host_port(url) == db.host_port(keywords) == "db.example:5433"


def test_db_status_with_keywords_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    # port 1 on the loopback: nothing listens there, so the connection is refused at once
    monkeypatch.setenv(
        db.ENV_URL, "host=127.0.0.1 port=1 user=tieout password='s3cr;et pw' dbname=warehouse"
    )
    result = CliRunner().invoke(cli, ["db", "status"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "configured warehouse: postgresql://tieout:***@127.0.0.1:1/warehouse" in result.stdout
    assert "cannot reach the warehouse at 127.0.0.1:1" in result.stderr
    assert "s3cr" not in result.output


def test_unreadable_connection_string_is_named_not_quoted() -> None:
    env = {**os.environ, db.ENV_URL: "host=db.example s3cr;et"}
    tieout = Path(sys.executable).with_name("tieout")
    result = subprocess.run(  # noqa: S603 - the project's own command
        [str(tieout), "db", "url"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "neither a postgresql:// URL nor libpq keywords" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cr" not in result.stdout + result.stderr
