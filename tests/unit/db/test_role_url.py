"""A stage's URL is the owner's server and database as the stage's role, with the role's own
password or none: never the owner's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tieout import db

OWNER = "postgresql://tieout:owner-secret@warehouse.internal:6432/tieout?sslmode=require"


@pytest.fixture(autouse=True)
def no_role_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
    for role in db.ROLES:
        monkeypatch.delenv("AIRFLOW_CONN_" + db.role_connection_id(role).upper(), raising=False)


def test_each_stage_has_its_own_role() -> None:
    stages = ["loader", "transformer", "validator", "reconciler", "reverse_etl"]
    assert [db.ROLES[stage] for stage in stages] == [f"tieout_{stage}" for stage in stages]
    assert len(set(db.ROLES.values())) == len(db.ROLES)


def test_role_url_keeps_server_and_database_and_drops_the_owner_password() -> None:
    url = db.role_url("loader", OWNER)
    assert url == "postgresql://tieout_loader@warehouse.internal:6432/tieout?sslmode=require"


def test_role_url_drops_the_owner_login_from_the_query_string() -> None:
    url = db.role_url(
        "loader", "postgresql://@warehouse.internal/tieout?user=tieout&password=s3&sslmode=require"
    )
    assert url == "postgresql://tieout_loader@warehouse.internal/tieout?sslmode=require"
    keywords = db.role_url(
        "reconciler", db._from_airflow_uri("host=h user=tieout password=s3 dbname=w")
    )
    assert "s3" not in keywords and keywords.startswith("postgresql://tieout_reconciler@h/w")


def test_role_password_comes_from_its_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE_TRANSFORMER",
        "postgres://tieout_transformer:p%40ss%2Fword@elsewhere:5432/ignored",
    )
    url = db.role_url("transformer", OWNER)
    assert url == (
        "postgresql://tieout_transformer:p%40ss%2Fword@warehouse.internal:6432/tieout"
        "?sslmode=require"
    )
    assert db.redact(url) == (
        "postgresql://tieout_transformer:***@warehouse.internal:6432/tieout?sslmode=require"
    )


def test_role_connection_in_json_form_may_rename_the_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE_REVERSE_ETL",
        '{"conn_type": "postgres", "login": "rev_writer", "password": "s3cret"}',
    )
    assert db.role_url("reverse_etl", OWNER).startswith(
        "postgresql://rev_writer:s3cret@warehouse.internal:6432/tieout"
    )


def test_role_url_of_a_role_url_is_the_same() -> None:
    once = db.role_url("reconciler", OWNER.replace("tieout:owner-secret", "tieout_reconciler:pw"))
    assert db.role_url("reconciler", once) == once


def test_unknown_role_is_named() -> None:
    with pytest.raises(
        ValueError, match="unknown warehouse role 'owner' \\(expected one of loader"
    ):
        db.role_url("owner", OWNER)


def test_a_role_that_cannot_log_in_is_told_what_to_configure() -> None:
    with pytest.raises(db.DatabaseUnreachable) as caught:
        db.connect("postgresql://owner-secret@127.0.0.1:1/tieout", role="validator")
    message = str(caught.value)
    assert message.startswith("cannot reach the warehouse at 127.0.0.1:1")
    assert "tieout_validator" in message
    assert "AIRFLOW_CONN_TIEOUT_WAREHOUSE_VALIDATOR" in message
    assert "owner-secret" not in message
