"""One SQLite file per sandbox system: records as served JSON, keyed and indexed for paging.

Pages are read with keyset or offset SQL on indexed columns; nothing here loads a whole table.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RESOURCES: dict[str, tuple[str, ...]] = {
    "crm": ("contacts", "companies"),
    "erp": ("customers", "products", "sales_orders", "invoices"),
    "billing": ("customers", "invoices", "payments"),
    "shop": ("customers", "orders", "products"),
}

# seq is the insertion order (the rowid); pk is the id the API serves (text or integer).
RECORD_TABLE = """
create table if not exists {name} (
    seq integer primary key,
    pk not null,
    updated_ms integer not null,
    created_ms integer not null,
    doc text not null
)
"""
# Built after the bulk load: appending rows is far cheaper than growing random-key indexes.
RECORD_INDEXES = (
    "create unique index if not exists {name}_pk on {name} (pk)",
    "create index if not exists {name}_updated on {name} (updated_ms, seq)",
)

AUDIT_TABLE = """
create table if not exists audit_log (
    id integer primary key,
    at text not null,
    method text not null,
    path text not null,
    idempotency_key text,
    body text,
    status integer not null,
    result text,
    applied integer not null,
    replayed integer not null default 0,
    dropped integer not null default 0
)
"""
IDEMPOTENCY_TABLE = """
create table if not exists idempotency (
    key text primary key,
    method text not null,
    path text not null,
    body_hash text not null,
    status integer not null,
    response text not null,
    created_ms integer not null
)
"""

Row = tuple[Any, int, int, str]


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("pragma busy_timeout = 30000")
    return conn


def create_database(path: Path, system: str) -> sqlite3.Connection:
    """A fresh file for `system` (an existing one is replaced), tuned for bulk loading."""
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    conn = connect(path)
    conn.execute("pragma journal_mode = off")
    conn.execute("pragma synchronous = off")
    for name in RESOURCES[system]:
        conn.execute(RECORD_TABLE.format(name=name))
    conn.execute(AUDIT_TABLE)
    conn.execute(IDEMPOTENCY_TABLE)
    return conn


def finish_database(conn: sqlite3.Connection, system: str) -> None:
    """Build the paging indexes and switch to WAL so services and `mutate` can share the file."""
    for name in RESOURCES[system]:
        for index in RECORD_INDEXES:
            conn.execute(index.format(name=name))
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = normal")
    conn.close()


def open_database(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `tieout sandbox seed` first")
    conn = connect(path)
    conn.execute("pragma synchronous = normal")
    return conn


class BulkWriter:
    """Buffers rows per table and writes them with executemany inside one transaction each."""

    def __init__(
        self, conn: sqlite3.Connection, chunk: int = 5000, own_transactions: bool = True
    ) -> None:
        self.conn = conn
        self.chunk = chunk
        self.own_transactions = own_transactions
        self.buffers: dict[str, list[Row]] = {}

    def add(
        self, table: str, pk: Any, updated_ms: int, created_ms: int, doc: dict[str, Any]
    ) -> None:
        buffer = self.buffers.setdefault(table, [])
        buffer.append((pk, updated_ms, created_ms, json.dumps(doc, separators=(",", ":"))))
        if len(buffer) >= self.chunk:
            self.flush_table(table)

    def flush_table(self, table: str) -> None:
        rows = self.buffers.get(table)
        if not rows:
            return
        if self.own_transactions:
            self.conn.execute("begin")
        self.conn.executemany(
            f"insert into {table} (pk, updated_ms, created_ms, doc) values (?, ?, ?, ?)", rows
        )
        if self.own_transactions:
            self.conn.execute("commit")
        rows.clear()

    def flush(self) -> None:
        for table in list(self.buffers):
            self.flush_table(table)


def get(conn: sqlite3.Connection, table: str, pk: Any) -> tuple[int, dict[str, Any]] | None:
    """(seq, record) of the record with id `pk`, or None."""
    row = conn.execute(f"select seq, doc from {table} where pk = ?", (pk,)).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def put(
    conn: sqlite3.Connection, table: str, pk: Any, doc: dict[str, Any], updated_ms: int
) -> None:
    """Replace the stored record `pk` (which must exist)."""
    conn.execute(
        f"update {table} set doc = ?, updated_ms = ? where pk = ?",
        (json.dumps(doc, separators=(",", ":")), updated_ms, pk),
    )


def insert(conn: sqlite3.Connection, table: str, pk: Any, doc: dict[str, Any], now_ms: int) -> None:
    conn.execute(
        f"insert into {table} (pk, updated_ms, created_ms, doc) values (?, ?, ?, ?)",
        (pk, now_ms, now_ms, json.dumps(doc, separators=(",", ":"))),
    )


def where(conditions: dict[str, tuple[Any, ...] | None]) -> tuple[str, list[Any]]:
    """`where a and b ...` of the conditions whose arguments are not None, and those arguments."""
    clauses: list[str] = []
    args: list[Any] = []
    for clause, values in conditions.items():
        if values is not None:
            clauses.append(clause)
            args.extend(values)
    return ("where " + " and ".join(clauses) if clauses else ""), args


def page_by_updated(
    conn: sqlite3.Connection,
    table: str,
    limit: int,
    updated_min_ms: int | None,
    after: tuple[int, int] | None,
) -> list[tuple[int, int, str]]:
    """Keyset page ordered by (updated_ms, seq): rows (updated_ms, seq, doc)."""
    sql, args = where(
        {
            "updated_ms >= ?": None if updated_min_ms is None else (updated_min_ms,),
            "(updated_ms, seq) > (?, ?)": after,
        }
    )
    return conn.execute(
        f"select updated_ms, seq, doc from {table} {sql} order by updated_ms, seq limit ?",
        (*args, limit),
    ).fetchall()


def page_by_offset(
    conn: sqlite3.Connection, table: str, offset: int, limit: int, updated_min_ms: int | None
) -> tuple[list[str], int]:
    """Offset page in insertion order plus the total count under the same filter."""
    sql, args = where({"updated_ms >= ?": None if updated_min_ms is None else (updated_min_ms,)})
    total = conn.execute(f"select count(*) from {table} {sql}", args).fetchone()[0]
    rows = conn.execute(
        f"select doc from {table} {sql} order by seq limit ? offset ?", (*args, limit, offset)
    ).fetchall()
    return [row[0] for row in rows], total


def page_newest_first(
    conn: sqlite3.Connection,
    table: str,
    limit: int,
    before_seq: int | None,
    updated_min_ms: int | None,
    created_min_ms: int | None,
) -> tuple[list[str], bool]:
    """Stripe-style page, newest first (seq descending); returns (docs, has_more)."""
    sql, args = where(
        {
            "seq < ?": None if before_seq is None else (before_seq,),
            "updated_ms >= ?": None if updated_min_ms is None else (updated_min_ms,),
            "created_ms >= ?": None if created_min_ms is None else (created_min_ms,),
        }
    )
    rows = conn.execute(
        f"select doc from {table} {sql} order by seq desc limit ?", (*args, limit + 1)
    ).fetchall()
    return [row[0] for row in rows[:limit]], len(rows) > limit


def iterate(conn: sqlite3.Connection, table: str, chunk: int = 5000) -> Iterator[dict[str, Any]]:
    """Every record of `table` in insertion order, read in chunks."""
    last = 0
    while True:
        rows = conn.execute(
            f"select seq, doc from {table} where seq > ? order by seq limit ?", (last, chunk)
        ).fetchall()
        if not rows:
            return
        for _seq, doc in rows:
            yield json.loads(doc)
        last = rows[-1][0]


def count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def record_audit(
    conn: sqlite3.Connection,
    method: str,
    path: str,
    idempotency_key: str | None,
    body: str,
    status: int,
    result: str,
    applied: bool,
    replayed: bool = False,
    dropped: bool = False,
) -> None:
    at = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        + f".{int(time.time() * 1000) % 1000:03d}Z"
    )
    conn.execute(
        "insert into audit_log (at, method, path, idempotency_key, body, status, result, applied,"
        " replayed, dropped) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, method, path, idempotency_key, body, status, result, applied, replayed, dropped),
    )


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every write a service received, oldest first, as dicts (the audit_log columns)."""
    conn = open_database(path)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("select * from audit_log order by id").fetchall()
        return [dict(row) for row in rows]
    finally:
        conn.close()


def table_digest(conn: sqlite3.Connection, tables: Iterable[str]) -> str:
    """A hash of the records of `tables` in insertion order (proves seeding is repeatable)."""
    import hashlib

    digest = hashlib.sha256()
    for table in tables:
        for row in conn.execute(
            f"select pk, updated_ms, created_ms, doc from {table} order by seq"
        ):
            digest.update(repr(row).encode())
    return digest.hexdigest()
