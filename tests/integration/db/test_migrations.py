"""Migrations apply once, in order, and refuse an edited history."""

from __future__ import annotations

import psycopg
import pytest

from tieout.db import migrate

SCHEMAS = {"raw", "staging", "intermediate", "canonical", "finance", "recon", "rev", "ops"}


def test_all_schemas_exist(conn: psycopg.Connection) -> None:
    found = {row[0] for row in conn.execute("select nspname from pg_namespace")}
    assert found >= SCHEMAS


def test_rerun_applies_nothing(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as connection:
        assert migrate.migrate(connection) == []
    with psycopg.connect(warehouse_url) as connection:
        applied = [r[0] for r in connection.execute("select version from ops.schema_migrations")]
    assert applied == sorted(applied)
    assert len(applied) == len(migrate.available())


def test_edited_migration_is_refused(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    original = migrate.available()
    edited = [
        migrate.Migration(m.version, m.name, m.sql + "\n-- edited") if i == 0 else m
        for i, m in enumerate(original)
    ]
    monkeypatch.setattr(migrate, "available", lambda: edited)
    with psycopg.connect(warehouse_url) as connection, pytest.raises(migrate.MigrationError) as err:
        migrate.migrate(connection)
    assert "changed after it was applied" in str(err.value)
