"""Write pages into raw.<source>__<stream> with COPY and advance ops.sync_state in the same
transaction, so a crash at any moment resumes without losing or duplicating a record.

It appends only; it must never update or delete a raw row, nor INSERT raw rows one by one.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from tieout.extract.paginate import Page, dig
from tieout.extract.records import (
    Malformed,
    copy_text,
    cursor_time,
    encode,
    primary_key,
    served,
)
from tieout.extract.schema_drift import Observer

fromisoformat = datetime.fromisoformat
MAX_BATCH_BYTES = 16 * 1024 * 1024
STAGE_DDL = """
    create temp table if not exists _tieout_stage (
        _pk text not null, _record text not null, _record_hash text not null, _page int not null
    ) on commit delete rows;
    create temp table if not exists _tieout_pages (
        page int not null, url text, extracted_at timestamptz not null
    ) on commit delete rows;
"""


def table_name(source: str, stream: str) -> str:
    return f"{source}__{stream}"


def raw_table(source: str, stream: str) -> sql.Composed:
    return sql.SQL("raw.{}").format(sql.Identifier(table_name(source, stream)))


def ensure_raw_table(conn: psycopg.Connection[Any], source: str, stream: str) -> None:
    """Create the raw table and its (key, version order) index on first use."""
    name = table_name(source, stream)
    with conn.transaction():
        conn.execute(
            sql.SQL(
                """create table if not exists raw.{table} (
                    _seq bigint generated always as identity,
                    _pk text not null,
                    _record jsonb not null,
                    _record_hash text not null,
                    _extracted_at timestamptz not null,
                    _run_id text not null,
                    _source_url text,
                    _deleted boolean not null default false
                )"""
            ).format(table=sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("create index if not exists {index} on raw.{table} (_pk, _seq)").format(
                index=sql.Identifier(f"{name}__pk_seq"), table=sql.Identifier(name)
            )
        )
        conn.execute(
            sql.SQL("comment on table raw.{table} is {comment}").format(
                table=sql.Identifier(name),
                comment=sql.Literal(
                    f"{source}.{stream} as served, append-only: one row per distinct version "
                    "of each record; the latest version of a key has the highest _seq."
                ),
            )
        )


def insert_new_versions_sql(source: str, stream: str) -> sql.Composed:
    """Stage -> raw, skipping a record whose latest raw version has the same hash."""
    return sql.SQL(
        """insert into {table} (_pk, _record, _record_hash, _extracted_at, _run_id, _source_url)
           select s._pk, s._record::jsonb, s._record_hash, p.extracted_at, %(run_id)s, p.url
           from _tieout_stage s join _tieout_pages p on p.page = s._page
           where not exists (
               select 1 from (
                   select r._record_hash from {table} r
                   where r._pk = s._pk order by r._seq desc limit 1
               ) latest
               where latest._record_hash = s._record_hash
           )"""
    ).format(table=raw_table(source, stream))


@dataclass
class Batch:
    """Pages since the last commit, already encoded as COPY text: bounded by rows and bytes."""

    primary_key: list[str]
    cursor_field: str | None
    zone: ZoneInfo
    observer: Observer
    lines: list[str] = field(default_factory=list)
    size: int = 0
    pages: list[tuple[int, str, datetime]] = field(default_factory=list)
    quarantine: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    records: int = 0
    repeated: int = 0
    bytes: int = 0
    cursor_max: datetime | None = None
    api_total: int | None = None
    next_request: dict[str, Any] | None = None
    last_page: bool = False

    def add(self, page: Page) -> None:
        number = len(self.pages)
        self.pages.append((number, page.url, datetime.fromtimestamp(page.fetched_at, UTC)))
        self.bytes += page.bytes
        self.records += len(page.records)
        if page.api_total is not None:
            self.api_total = page.api_total
        self.next_request = page.next_request
        self.last_page = page.next_request is None
        suffix = f"\t{number}\n"
        keys = self.primary_key
        cursor_field = self.cursor_field
        nested_cursor = cursor_field is not None and "." in cursor_field
        zone = self.zone
        observe = self.observer.observe
        seen = self.seen
        lines = self.lines
        cursor_max = self.cursor_max
        size = 0
        texts = page.texts
        for index, record in enumerate(page.records):
            try:
                pk = primary_key(record, keys)
                if texts is None:
                    text, digest = encode(record)
                    text = text.replace("\\", "\\\\")
                else:
                    text, digest = served(texts[index])
            except Malformed as exc:
                if texts is not None:
                    raw = texts[index]
                else:
                    raw = record if isinstance(record, str) else json.dumps(record, default=str)
                pk_hint = None
                if isinstance(record, dict):
                    value = record.get(keys[0])
                    pk_hint = None if value is None else str(value)
                self.quarantine.append((str(exc), raw, pk_hint, page.url))
                continue
            observe(record)
            if cursor_field is not None:
                value = dig(record, cursor_field) if nested_cursor else record.get(cursor_field)
                if type(value) is str:
                    try:
                        moment: datetime | None = fromisoformat(value)
                    except ValueError:
                        moment = cursor_time(value, zone)
                    if moment is not None and moment.tzinfo is None:
                        moment = moment.replace(tzinfo=zone)
                else:
                    moment = cursor_time(value, zone)
                if moment is not None and (cursor_max is None or moment > cursor_max):
                    cursor_max = moment
            if digest in seen:
                self.repeated += 1
                continue
            seen.add(digest)
            line = f"{copy_text(pk)}\t{text}\t{digest}{suffix}"
            size += len(line)
            lines.append(line)
        self.size += size
        self.cursor_max = cursor_max

    def staged(self) -> int:
        return len(self.lines)

    def full(self, max_rows: int) -> bool:
        return len(self.lines) >= max_rows or self.size >= MAX_BATCH_BYTES


@dataclass
class Totals:
    """What one flush wrote, for the run's figures."""

    rows: int = 0
    unchanged: int = 0
    quarantined: int = 0


def prepare_session(conn: psycopg.Connection[Any]) -> None:
    """Session settings and temp tables for loading.

    synchronous_commit=off is safe here: a lost commit loses rows and their cursor together,
    which a rerun simply fetches again.
    """
    with conn.transaction():
        conn.execute("set synchronous_commit = off")
        conn.execute(STAGE_DDL)


def flush(
    conn: psycopg.Connection[Any],
    source: str,
    stream: str,
    run_id: str,
    batch: Batch,
    state_update: dict[str, Any],
    run_counters: dict[str, Any],
) -> Totals:
    """One transaction: COPY the batch, insert new versions, quarantine, sync_state, counters."""
    totals = Totals(quarantined=len(batch.quarantine))
    with conn.transaction(), conn.cursor() as cur:
        if batch.lines:
            with cur.copy(
                "copy _tieout_stage (_pk, _record, _record_hash, _page) from stdin"
            ) as cp:
                chunk: list[str] = []
                chunk_size = 0
                for line in batch.lines:
                    chunk.append(line)
                    chunk_size += len(line)
                    if chunk_size >= 1 << 20:
                        cp.write("".join(chunk))
                        chunk, chunk_size = [], 0
                if chunk:
                    cp.write("".join(chunk))
            with cur.copy("copy _tieout_pages (page, url, extracted_at) from stdin") as cp:
                for row in batch.pages:
                    cp.write_row(row)
            cur.execute(insert_new_versions_sql(source, stream), {"run_id": run_id})
            totals.rows = max(cur.rowcount, 0)
        totals.unchanged = len(batch.lines) - totals.rows + batch.repeated
        if batch.quarantine:
            cur.executemany(
                """insert into ops.quarantine
                       (source, stream, reason, raw_text, raw_hash, pk, source_url,
                        first_run_id, last_run_id)
                   values (%s, %s, %s, %s, md5(%s), %s, %s, %s, %s)
                   on conflict (source, stream, raw_hash) do update set
                       last_run_id = excluded.last_run_id,
                       times_seen = ops.quarantine.times_seen + 1,
                       last_seen_at = now()""",
                [
                    (source, stream, reason, raw, raw, pk, url, run_id, run_id)
                    for reason, raw, pk, url in batch.quarantine
                ],
            )
        write_state(cur, source, stream, run_id, state_update)
        add_run_counters(
            cur,
            run_id,
            source,
            stream,
            {
                **run_counters,
                "records": batch.records,
                "rows": totals.rows,
                "unchanged": totals.unchanged,
                "pages": len(batch.pages),
                "bytes": batch.bytes,
                "quarantined": totals.quarantined,
            },
        )
    return totals


# ---------------------------------------------------------------- ops.sync_state


STATE_COLUMNS = (
    "cursor_value",
    "last_completed_at",
    "pass_id",
    "pass_from",
    "pass_full_refresh",
    "pass_cursor_max",
    "pass_records",
    "pass_pages",
    "pass_api_total",
    "resume",
    "run_id",
)


def read_state(conn: psycopg.Connection[Any], source: str, stream: str) -> dict[str, Any]:
    row = conn.execute(
        sql.SQL("select {} from ops.sync_state where source = %s and stream = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, STATE_COLUMNS))
        ),
        (source, stream),
    ).fetchone()
    if row is None:
        return {"pass_records": 0, "pass_pages": 0}
    return dict(zip(STATE_COLUMNS, row, strict=True))


def write_state(
    cur: psycopg.Cursor[Any], source: str, stream: str, run_id: str, values: dict[str, Any]
) -> None:
    """Upsert the named columns of the stream's sync_state row (inside the caller's transaction)."""
    values = {**values, "run_id": run_id}
    if "resume" in values and values["resume"] is not None:
        values["resume"] = json.dumps(values["resume"])
    names = list(values)
    cur.execute(
        sql.SQL(
            """insert into ops.sync_state (source, stream, {cols}, updated_at)
               values (%(source)s, %(stream)s, {vals}, now())
               on conflict (source, stream) do update set {sets}, updated_at = now()"""
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, names)),
            vals=sql.SQL(", ").join(sql.Placeholder(n) for n in names),
            sets=sql.SQL(", ").join(
                sql.SQL("{} = excluded.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in names
            ),
        ),
        {"source": source, "stream": stream, **values},
    )


# ---------------------------------------------------------------- ops.extract_runs

COUNTERS = (
    "records",
    "rows",
    "unchanged",
    "pages",
    "bytes",
    "retries",
    "http_429",
    "quarantined",
    "deleted",
    "duration_s",
)


def add_run_counters(
    cur: psycopg.Cursor[Any], run_id: str, source: str, stream: str, deltas: dict[str, Any]
) -> None:
    """Add counter deltas to the run's row (creating it); same transaction as the rows counted."""
    values = {name: deltas.get(name, 0) for name in COUNTERS}
    cur.execute(
        sql.SQL(
            """insert into ops.extract_runs (run_id, source, stream, status, {cols})
               values (%(run_id)s, %(source)s, %(stream)s, 'running', {vals})
               on conflict (run_id, source, stream) do update set {sets}"""
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, COUNTERS)),
            vals=sql.SQL(", ").join(sql.Placeholder(n) for n in COUNTERS),
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = ops.extract_runs.{c} + excluded.{c}").format(c=sql.Identifier(n))
                for n in COUNTERS
            ),
        ),
        {"run_id": run_id, "source": source, "stream": stream, **values},
    )


class Writer:
    """Flushes batches in order on one background thread, so the next batch is encoded while
    PostgreSQL works on this one. At most `depth` batches wait; errors surface on the caller."""

    def __init__(
        self, conn: psycopg.Connection[Any], source: str, stream: str, run_id: str, depth: int = 1
    ) -> None:
        self.conn, self.source, self.stream, self.run_id = conn, source, stream, run_id
        self.pending: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.totals = Totals()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="tieout-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            item = self.pending.get()
            if item is None:
                return
            if self.error is not None:
                continue
            batch, update, counters = item
            try:
                written = flush(
                    self.conn, self.source, self.stream, self.run_id, batch, update, counters
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                self.error = exc
                continue
            self.totals.rows += written.rows
            self.totals.unchanged += written.unchanged
            self.totals.quarantined += written.quarantined

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, batch: Batch, update: dict[str, Any], counters: dict[str, Any]) -> None:
        self._check()
        self.pending.put((batch, update, counters))

    def close(self) -> Totals:
        """Wait for every submitted batch to commit; raise the first error, if any."""
        self.pending.put(None)
        self.thread.join()
        self._check()
        return self.totals
