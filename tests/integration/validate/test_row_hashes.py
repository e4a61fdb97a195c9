"""The row hash that finds a canonical suite's changed rows: every business column counts, the
bookkeeping columns do not, a column PostgreSQL cannot hash by value counts as its text, and the
md5 baselines of earlier releases are dropped by their migration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import psycopg
import pytest

from tieout.db import migrate
from tieout.validate import scope

MIGRATION = next(m for m in migrate.available() if m.version == "0074")
TARGET = scope.Target("sandbox.things", "sandbox", "things", "thing_id", "", frozenset())


@pytest.fixture
def things(
    new_warehouse: Callable[[str], AbstractContextManager[str]],
) -> Iterator[psycopg.Connection]:
    with new_warehouse("tieout_row_hashes") as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema sandbox")
        conn.execute(
            """create table sandbox.things (
                   thing_id bigint, amount numeric, attrs jsonb, raw_doc json, spot point,
                   seen_at timestamptz, _loaded_at timestamptz, _row_hash text)"""
        )
        conn.execute(
            """insert into sandbox.things values
                   (1, 10.5, '{"a": 1}', '{"b": 2}', point(1, 2), '2026-12-01', now(), 'x'),
                   (2, 3, null, null, null, null, now(), 'y')"""
        )
        yield conn


def hashes(conn: psycopg.Connection) -> dict[str, int]:
    scope.hash_rows(conn, TARGET)
    rows = conn.execute(
        f"select record_key, row_hash from {scope.SCHEMA}.{scope.next_rows_table(TARGET.name)}"
    ).fetchall()
    return {str(key): int(value) for key, value in rows}


@pytest.mark.parametrize(
    "change",
    [
        "amount = 10.6",
        """attrs = '{"a": 2}'""",
        """raw_doc = '{"b": 3}'""",  # json has no hash function: its text is hashed
        "spot = point(1, 3)",  # nor has point
        "seen_at = '2026-12-02'",
        "amount = null",
    ],
)
def test_a_change_to_any_business_column_changes_the_rows_hash(
    things: psycopg.Connection, change: str
) -> None:
    before = hashes(things)
    things.execute(f"update sandbox.things set {change} where thing_id = 1")  # noqa: S608
    after = hashes(things)
    assert after["1"] != before["1"]
    assert after["2"] == before["2"]


def test_bookkeeping_columns_and_equal_values_keep_the_hash(things: psycopg.Connection) -> None:
    before = hashes(things)
    # dbt rewrites these on every build; 10.500 is the value 10.5 with another display scale
    things.execute("update sandbox.things set _loaded_at = now(), _row_hash = 'z'")
    things.execute("update sandbox.things set amount = amount * 1.00")
    assert things.execute(
        "select amount::text from sandbox.things where thing_id = 1"
    ).fetchone() == ("10.500",)
    assert hashes(things) == before


def test_the_migration_drops_the_md5_baselines_of_earlier_releases(
    things: psycopg.Connection,
) -> None:
    for name in ("canonical__orders__rows", "canonical__orders__rows__next"):
        things.execute(f"create table {scope.SCHEMA}.{name} (record_key text, row_hash text)")
    hashes(things)  # a baseline of tonight's hash stays
    things.execute(MIGRATION.sql)
    left = {
        row[0]
        for row in things.execute(
            "select tablename from pg_tables where schemaname = %s", (scope.SCHEMA,)
        )
    }
    assert left == {scope.next_rows_table(TARGET.name)}
