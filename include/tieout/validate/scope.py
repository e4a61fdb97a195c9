"""Which rows a suite must read tonight: its whole table, or only what changed since its last
validation (ops.validation_baselines).

- A raw table is append-only: the changed rows are every version of each key that gained a
  version above the `_seq` the last validation read (the field checks look at each key's newest
  version, the cursor check at its history).
- A canonical table keeps a hash per row as the last validation saw it
  (validate_scope.<schema>__<table>__row_hashes): new rows and rows whose hash differs are the
  changed ones. The table is hashed once a validation: the hashes computed to find tonight's
  changes become the next validation's baseline.

The changed rows are copied to validate_scope.<schema>__<table>, which GX reads for the suite's
`row` expectations. `table` expectations (counts, references, sums, change rates), and every
expectation that failed last time, read the whole table. A uniqueness expectation that passed
last time reads the changed rows against the whole table (tieout.validate.run.on_changed_rows):
a duplicate made since then has at least one changed or new row. Whole tables for everything
when asked (`--full`, the config's nights), and whenever the baseline cannot be trusted: no
earlier validation, a suite that changed, a raw table that was recreated, or too many changes.
Nothing here changes the data it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from tieout.validate.suites import CHANGES_SCHEMA as SCHEMA
from tieout.validate.suites import changes_table as scope_table

Mode = Literal["full", "changes"]


@dataclass(frozen=True)
class Target:
    """The suite's table, as scope needs it (tieout.validate.run.SuiteFile provides these)."""

    name: str
    schema: str
    table: str
    key: str
    digest: str
    table_checks: frozenset[str]  # expectations that always read the whole table


@dataclass
class Scope:
    suite: str
    mode: Mode
    reason: str
    changed_rows: int | None = None
    table_rows: int | None = None
    table_oid: int | None = None
    watermark: int | None = None
    whole_table: frozenset[str] = field(default_factory=frozenset)
    failed_last_time: frozenset[str] = field(default_factory=frozenset)
    hashes_ready: bool = False  # this validation's row hashes are in next_rows_table already

    @property
    def relation(self) -> str:
        return f"{SCHEMA}.{scope_table(self.suite)}"

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "changed_rows": self.changed_rows,
            "table_rows": self.table_rows,
        }


def _ident(target: Target) -> sql.Composable:
    return sql.Identifier(target.schema, target.table)


def raw_position(conn: psycopg.Connection[Any], target: Target) -> tuple[int | None, int | None]:
    """(table oid, highest committed _seq) of a raw table; (None, None) when it is not there."""
    row = conn.execute("select to_regclass(%s)::oid::bigint", (target.name,)).fetchone()
    if not row or row[0] is None:
        return None, None
    top = conn.execute(sql.SQL("select max(_seq) from {}").format(_ident(target))).fetchone()
    return int(row[0]), int(top[0]) if top and top[0] is not None else 0


def baseline(conn: psycopg.Connection[Any], suite: str) -> dict[str, Any] | None:
    row = conn.execute(
        """select run_id, suite_hash, table_oid, watermark from ops.validation_baselines
           where suite = %s""",
        (suite,),
    ).fetchone()
    if row is None:
        return None
    failed = conn.execute(
        """select expectation from ops.validation_results
           where run_id = %s and suite = %s and not success""",
        (row[0], suite),
    ).fetchall()
    return {
        "run_id": row[0],
        "suite_hash": row[1],
        "table_oid": row[2],
        "watermark": row[3],
        "failed": frozenset(str(r[0]) for r in failed),
    }


def estimated_rows(conn: psycopg.Connection[Any], relation: str) -> int:
    row = conn.execute(
        "select greatest(reltuples, 0)::bigint from pg_class where oid = to_regclass(%s)",
        (relation,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def plan(
    conn: psycopg.Connection[Any],
    target: Target,
    full_reason: str | None,
    max_changed_share: float,
) -> Scope:
    """Decide the suite's scope and, for `changes`, fill its validate_scope table."""
    oid, watermark = raw_position(conn, target) if target.schema == "raw" else (None, None)
    whole = Scope(target.name, "full", full_reason or "", table_oid=oid, watermark=watermark)
    if full_reason:
        return whole
    before = baseline(conn, target.name)
    if before is None:
        whole.reason = "no earlier validation of this suite"
        return whole
    if before["suite_hash"] != target.digest:
        whole.reason = "the suite changed since its last validation"
        return whole
    if target.schema == "raw" and (oid != before["table_oid"] or before["watermark"] is None):
        whole.reason = "the raw table was recreated since its last validation"
        return whole
    drop(conn, target.name)
    if target.schema == "raw":
        query = sql.SQL(
            """create unlogged table {scope} as
               select * from {table} where _pk in (
                   select _pk from {table} where _seq > {since} and _seq <= {until})"""
        ).format(
            scope=sql.Identifier(SCHEMA, scope_table(target.name)),
            table=_ident(target),
            since=sql.Literal(int(before["watermark"])),
            until=sql.Literal(watermark),
        )
    else:
        rows = f"{SCHEMA}.{rows_table(target.name)}"
        found = conn.execute("select to_regclass(%s) is not null", (rows,)).fetchone()
        if not (found and found[0]):
            whole.reason = "the row hashes of its last validation are gone"
            return whole
        hash_rows(conn, target)
        whole.hashes_ready = True
        query = sql.SQL(
            """create unlogged table {scope} as
               select t.* from {table} as t
               where t.{key} is null or cast(t.{key} as text) in (
                   select n.record_key from {fresh} as n
                   where not exists (
                       select 1 from {rows} as h
                       where h.record_key = n.record_key and h.row_hash = n.row_hash))"""
        ).format(
            scope=sql.Identifier(SCHEMA, scope_table(target.name)),
            table=_ident(target),
            fresh=sql.Identifier(SCHEMA, next_rows_table(target.name)),
            rows=sql.Identifier(SCHEMA, rows_table(target.name)),
            key=sql.Identifier(target.key),
        )
    changed = conn.execute(query).rowcount
    total = estimated_rows(conn, target.name)
    if total and changed > max_changed_share * total:
        drop(conn, target.name)
        whole.reason = f"{changed} of about {total} rows changed"
        return whole
    return Scope(
        target.name,
        "changes",
        f"{changed} changed rows since run {before['run_id']}",
        changed_rows=changed,
        table_rows=total,
        table_oid=oid,
        watermark=watermark,
        whole_table=target.table_checks | before["failed"],
        failed_last_time=before["failed"],
        hashes_ready=whole.hashes_ready,
    )


def drop(conn: psycopg.Connection[Any], suite: str) -> None:
    conn.execute(
        sql.SQL("drop table if exists {}").format(sql.Identifier(SCHEMA, scope_table(suite)))
    )


def advance(conn: psycopg.Connection[Any], run_id: str, target: Target, scope: Scope) -> None:
    """This validation is the suite's new baseline: its run, hash, raw position and, for a
    canonical table, the hashes of the rows it read. Call once its verdicts are written."""
    if target.schema != "raw":
        remember_rows(conn, target, scope)
    conn.execute(
        """insert into ops.validation_baselines
               (suite, run_id, suite_hash, table_oid, watermark, mode, validated_at)
           values (%s, %s, %s, %s, %s, %s, now())
           on conflict (suite) do update set
               run_id = excluded.run_id, suite_hash = excluded.suite_hash,
               table_oid = excluded.table_oid, watermark = excluded.watermark,
               mode = excluded.mode, validated_at = excluded.validated_at""",
        (target.name, run_id, target.digest, scope.table_oid, scope.watermark, scope.mode),
    )
    drop(conn, target.name)


# types PostgreSQL hashes by value (each has a default hash operator class); a column of any
# other type is hashed as its text
HASHED_TYPES = frozenset(
    {
        "bigint", "boolean", "bytea", "character", "character varying", "date",
        "double precision", "integer", "interval", "jsonb", "numeric", "real", "smallint",
        "text", "time without time zone", "timestamp with time zone",
        "timestamp without time zone", "uuid",
    }
)  # fmt: skip


def row_hash_sql(conn: psycopg.Connection[Any], target: Target, alias: str = "t") -> sql.Composable:
    """A 64-bit hash of a canonical row's business columns (PostgreSQL's hash_record_extended:
    the hash of each value by its type, two and a half times as fast as the md5 of the row's
    text on order_lines). dbt's bookkeeping columns (`_loaded_at`, `_row_hash`, ...) change on
    every rebuild and no expectation reads them."""
    columns = conn.execute(
        """select column_name, data_type from information_schema.columns
           where table_schema = %s and table_name = %s and column_name not like '\\_%%'
           order by ordinal_position""",
        (target.schema, target.table),
    ).fetchall()
    if not columns:
        return sql.SQL("hashtextextended(cast({} as text), 0)").format(sql.Identifier(alias))
    values = [
        sql.Identifier(alias, str(name))
        if data_type in HASHED_TYPES
        else sql.SQL("cast({} as text)").format(sql.Identifier(alias, str(name)))
        for name, data_type in columns
    ]
    return sql.SQL("hash_record_extended(row({}), 0)").format(sql.SQL(", ").join(values))


def rows_table(suite: str) -> str:
    """validate_scope's table of the row hashes a canonical suite's last validation read (named
    for the hash it holds: a baseline of another hash is not found, so the suite reads its
    whole table once)."""
    return f"{scope_table(suite)}__row_hashes"


def next_rows_table(suite: str) -> str:
    """The row hashes of the validation under way; they replace rows_table when it is done."""
    return rows_table(suite) + "__next"


def hash_rows(conn: psycopg.Connection[Any], target: Target) -> None:
    """Hash every row of the table as this validation reads it: one scan and one bulk write
    into an unlogged table (lost in a crash, and then the next validation of the suite reads
    the whole table)."""
    fresh = sql.Identifier(SCHEMA, next_rows_table(target.name))
    conn.execute(sql.SQL("drop table if exists {}").format(fresh))
    conn.execute(
        sql.SQL(
            """create unlogged table {fresh} as
               select cast(t.{key} as text) as record_key, {hash} as row_hash
               from {table} as t where t.{key} is not null"""
        ).format(
            fresh=fresh,
            key=sql.Identifier(target.key),
            table=_ident(target),
            hash=row_hash_sql(conn, target),
        )
    )


def remember_rows(conn: psycopg.Connection[Any], target: Target, scope: Scope) -> None:
    """Replace the suite's row hashes with those of the table as this validation read it
    (hashed when its scope was planned, or now for a whole-table validation)."""
    if not scope.hashes_ready:
        hash_rows(conn, target)
    conn.execute(
        sql.SQL("drop table if exists {}").format(sql.Identifier(SCHEMA, rows_table(target.name)))
    )
    conn.execute(
        sql.SQL("alter table {} rename to {}").format(
            sql.Identifier(SCHEMA, next_rows_table(target.name)),
            sql.Identifier(rows_table(target.name)),
        )
    )
