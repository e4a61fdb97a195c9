"""dbt gets its profile from the warehouse URL through environment variables only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tieout.paths import dbt_project_dir
from tieout.transform.runner import ConsoleEcho, console_log_level, dbt_env
from tieout.transform.stage import build_args


def test_dbt_env_from_a_url_with_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt connects as the transformer role, with its own connection's login and password."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE_TRANSFORMER", "postgres://tx%40user:s3cr%2Ft@x/"
    )
    env = dbt_env("postgresql://owner:owner-pw@db.example:6543/warehouse?sslmode=require")
    assert env["TIEOUT_DBT_HOST"] == "db.example"
    assert env["TIEOUT_DBT_PORT"] == "6543"
    assert env["TIEOUT_DBT_USER"] == "tx@user"
    assert env["TIEOUT_DBT_PASSWORD"] == "s3cr/t"
    assert env["TIEOUT_DBT_DBNAME"] == "warehouse"
    assert env["TIEOUT_DBT_SSLMODE"] == "require"


def test_dbt_env_never_takes_the_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TIEOUT_WAREHOUSE_TRANSFORMER", raising=False)
    env = dbt_env("postgresql://postgres:owner-pw@db.example:54329/tieout")
    assert (env["TIEOUT_DBT_HOST"], env["TIEOUT_DBT_PORT"]) == ("db.example", "54329")
    assert (env["TIEOUT_DBT_USER"], env["TIEOUT_DBT_PASSWORD"]) == ("tieout_transformer", "")


def test_dbt_file_log_is_info_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    assert dbt_env("postgresql://postgres@localhost/tieout")["DBT_LOG_LEVEL_FILE"] == "info"
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    assert dbt_env("postgresql://postgres@localhost/tieout")["DBT_LOG_LEVEL_FILE"] == "debug"


def test_dbt_console_log_is_off_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DBT_LOG_LEVEL", raising=False)
    assert console_log_level() == "none"
    # Cosmos tasks take dbt_env(), and keep dbt's console log for their Airflow task log
    assert "DBT_LOG_LEVEL" not in dbt_env("postgresql://postgres@localhost/tieout")
    monkeypatch.setenv("DBT_LOG_LEVEL", "info")
    assert console_log_level() == "info"


def event(name: str, level: str = "debug", msg: str = "", **data: Any) -> SimpleNamespace:
    return SimpleNamespace(
        info=SimpleNamespace(name=name, level=level, msg=msg), data=SimpleNamespace(**data)
    )


def test_console_echo_shows_warnings_and_errors_masked_and_counts_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[tuple[int, int | None, str, str]] = []
    echo = ConsoleEcho("s3cret", echo=True, on_node=lambda *a: seen.append(a))
    node = SimpleNamespace(unique_id="model.tieout.orders")
    echo(event("MainReportVersion", "info", "Running with dbt=1.11"))
    echo(event("LogStartLine", "info", "1 of 2 START", total=2, node_info=node))
    echo(event("NodeFinished", node_info=node, run_result=SimpleNamespace(status="success")))
    echo(event("RunResultError", "error", "could not connect as u:s3cret@db"))
    echo(event("Deprecation", "warn", "a deprecated config"))
    assert seen == [(1, 2, "model.tieout.orders", "success")]
    err = capsys.readouterr().err
    assert err.splitlines() == ["could not connect as u:***@db", "a deprecated config"]
    assert "Running with dbt" not in err

    quiet = ConsoleEcho("", echo=False, on_node=None)  # dbt's own console log is on
    quiet(event("RunResultError", "error", "boom"))
    assert capsys.readouterr().err == ""


def test_profiles_yml_holds_no_secret() -> None:
    text = (dbt_project_dir() / "profiles.yml").read_text()
    assert "env_var('TIEOUT_DBT_PASSWORD'" in text
    assert "password: \"{{ env_var('TIEOUT_DBT_PASSWORD', '') }}\"" in text


def test_build_args() -> None:
    assert build_args() == ["build"]
    assert build_args(["tag:canonical"], full_refresh=True) == [
        "build",
        "--select",
        "tag:canonical",
        "--full-refresh",
    ]


def test_dbt_output_stays_in_ignored_folders() -> None:
    ignored = (Path(__file__).resolve().parents[3] / ".gitignore").read_text().splitlines()
    assert "dbt_project/target/" in ignored and "dbt_project/logs/" in ignored


def test_schema_change_names_the_columns_and_tieouts_rebuild_command() -> None:
    from tieout.transform.runner import schema_change_message

    message = [
        "Compilation Error in model accounts (models/accounts.sql)",
        "The source and target schemas on this incremental model are out of sync!",
        "They can be reconciled in several ways:",
        "Source columns not in target: [PostgresColumn(column='currency', dtype='text')]",
        "Target columns not in source: []",
        "New column types: [{'column_name': 'amount', 'new_type': 'numeric'}]",
    ]
    text = schema_change_message("model.tieout.accounts", message)
    assert text is not None
    assert text.startswith(
        "the columns of accounts changed (source columns not in target: currency;"
    )
    assert "new column types: [{'column_name': 'amount'" in text
    assert "target columns not in source" not in text  # nothing there
    assert text.endswith("rebuild it with: tieout transform --full-refresh --select accounts")
    assert schema_change_message("model.tieout.accounts", ["Database Error", "boom"]) is None
