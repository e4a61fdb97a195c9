"""dbt gets its profile from the warehouse URL through environment variables only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tieout.paths import dbt_project_dir
from tieout.transform.runner import dbt_env
from tieout.transform.stage import build_args


def test_dbt_env_from_a_url_with_password() -> None:
    env = dbt_env("postgresql://tx%40user:s3cr%2Ft@db.example:6543/warehouse?sslmode=require")
    assert env["TIEOUT_DBT_HOST"] == "db.example"
    assert env["TIEOUT_DBT_PORT"] == "6543"
    assert env["TIEOUT_DBT_USER"] == "tx@user"
    assert env["TIEOUT_DBT_PASSWORD"] == "s3cr/t"
    assert env["TIEOUT_DBT_DBNAME"] == "warehouse"
    assert env["TIEOUT_DBT_SSLMODE"] == "require"


def test_dbt_env_from_the_embedded_url() -> None:
    env = dbt_env("postgresql://postgres@127.0.0.1:54329/tieout")
    assert (env["TIEOUT_DBT_HOST"], env["TIEOUT_DBT_PORT"]) == ("127.0.0.1", "54329")
    assert env["TIEOUT_DBT_PASSWORD"] == ""


def test_dbt_file_log_is_info_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    assert dbt_env("postgresql://postgres@localhost/tieout")["DBT_LOG_LEVEL_FILE"] == "info"
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    assert dbt_env("postgresql://postgres@localhost/tieout")["DBT_LOG_LEVEL_FILE"] == "debug"


def test_profiles_yml_holds_no_secret() -> None:
    text = (dbt_project_dir() / "profiles.yml").read_text()
    assert "env_var('TIEOUT_DBT_PASSWORD'" in text
    assert "password: \"{{ env_var('TIEOUT_DBT_PASSWORD', '') }}\"" in text


def test_build_args() -> None:
    assert build_args() == ["build"]
    assert build_args(["tag:canonical"], full_refresh=True, as_of_date="2026-01-31") == [
        "build",
        "--select",
        "tag:canonical",
        "--full-refresh",
        "--vars",
        '{"as_of_date": "2026-01-31"}',
    ]


def test_dbt_output_stays_in_ignored_folders() -> None:
    ignored = (Path(__file__).resolve().parents[3] / ".gitignore").read_text().splitlines()
    assert "dbt_project/target/" in ignored and "dbt_project/logs/" in ignored
