"""Write pages into raw.<source>__<stream> with COPY and advance ops.sync_state in the same
transaction, so a crash at any moment resumes without losing or duplicating a record.

It appends only; it must never update or delete a raw row, nor INSERT raw rows one by one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import xxhash
from psycopg import sql

from tieout.extract.paginate import Page, dig
from tieout.extract.records import (
    Malformed,
    cursor_time,
    field_of,
    latest_time,
    primary_key,
    record_lines,
)
from tieout.extract.schema_drift import Observer
from tieout.memory import quiet_gc

# xxh3-128 as 32 hex digits: 0.05 us a record where md5 took 0.74 (the writer's largest cost).
# A version hashed with md5 (as tieout did until 2026-12) still counts as unchanged: new_versions.
_digest = xxhash.xxh3_128_hexdigest
MAX_BATCH_BYTES = 16 * 1024 * 1024
RAW_COLUMNS = "_pk, _record, _record_hash, _extracted_at, _run_id, _source_url"
# COPY's binary format: PostgreSQL parses no text for keys, hashes, times or URLs, and nothing
# needs escaping (15% less backend CPU a row than the text format, measured on raw rows).
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no header extension
COPY_TRAILER = b"\xff\xff"
ROW_START = len(RAW_COLUMNS.split(",")).to_bytes(2, "big")
HASH_FIELD = (32).to_bytes(4, "big")
JSONB_VERSION = b"\x01"
POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The latest version's hash of each given key: one index probe per key.
LATEST_HASHES = """
    select k._pk, latest._record_hash
    from unnest(%s::text[]) as k (_pk)
    cross join lateral (
        select r._record_hash from {table} as r
        where r._pk = k._pk
        order by r._seq desc
        limit 1
    ) as latest
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
                    "of each record (_record_hash = xxh3-128 of its JSON as served, hex); "
                    "the latest version of a key has the highest _seq."
                ),
            )
        )


def has_rows(conn: psycopg.Connection[Any], source: str, stream: str) -> bool:
    row = conn.execute(
        sql.SQL("select exists (select from {table})").format(table=raw_table(source, stream))
    ).fetchone()
    return bool(row and row[0])


def binary_field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def to_postgres_time(moment: datetime) -> bytes:
    """A timestamptz in COPY's binary format: microseconds since 2000-01-01 UTC."""
    delta = moment - POSTGRES_EPOCH
    return (delta // timedelta(microseconds=1)).to_bytes(8, "big", signed=True)


def copy_rows(cur: psycopg.Cursor[Any], table: sql.Composed, rows: list[bytes]) -> None:
    """COPY binary tuples (from Staged.encoded) into a raw table, in one write."""
    statement = sql.SQL("copy {table} ({columns}) from stdin with (format binary)").format(
        table=table, columns=sql.SQL(RAW_COLUMNS)
    )
    with cur.copy(statement) as cp:
        cp.write(b"".join((COPY_HEADER, *rows, COPY_TRAILER)))


@dataclass
class Staged:
    """What one commit writes, as the writer receives it: per page the fields its
    rows share (`suffix`: _extracted_at, _run_id, _source_url in binary COPY form), then each
    record's key and JSON text, plus the quarantine and the counts."""

    groups: list[tuple[bytes, list[str], list[bytes]]] = field(default_factory=list)
    quarantine: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    records: int = 0
    body_bytes: int = 0
    pages: int = 0
    duplicates: int = 0  # records dropped: their key came again in the same page
    duplicate_keys: list[str] = field(default_factory=list)  # the first few, for the log

    def encoded(self) -> Encoded:
        """Keys, hashes, binary COPY tuples and JSON texts of the staged records, in order."""
        keys: list[str] = []
        digests: list[str] = []
        rows: list[bytes] = []
        all_texts: list[bytes] = []
        for suffix, group_keys, texts in self.groups:
            keys += group_keys
            all_texts += texts
            for key, text in zip(group_keys, texts, strict=True):
                digest = _digest(text)
                key_bytes = key.encode()
                digests.append(digest)
                rows.append(
                    b"".join(
                        (
                            ROW_START,
                            len(key_bytes).to_bytes(4, "big"),
                            key_bytes,
                            (len(text) + 1).to_bytes(4, "big"),
                            JSONB_VERSION,
                            text,
                            HASH_FIELD,
                            digest.encode(),
                            suffix,
                        )
                    )
                )
        return Encoded(keys, digests, rows, all_texts)


class Encoded(NamedTuple):
    """A staged batch ready for COPY: per record its key, hash, binary tuple and JSON text."""

    keys: list[str]
    digests: list[str]
    rows: list[bytes]
    texts: list[bytes]


Texts = list[bytes]  # records' JSON as served (an alias: Batch has a property named bytes)


@dataclass
class Batch:
    """Pages since the last commit: keys and JSON texts (no parsed record is kept), bounded by
    rows and bytes. Hashing and COPY encoding happen as it is handed to the writer."""

    primary_key: list[str]
    cursor_field: str | None
    zone: ZoneInfo
    observer: Observer
    run_id: str = ""
    staged: Staged = field(default_factory=Staged)
    size: int = 0
    cursor_max: datetime | None = None
    api_total: int | None = None
    next_request: dict[str, Any] | None = None
    last_page: bool = False

    @property
    def rows(self) -> int:
        return sum(len(keys) for _, keys, _ in self.staged.groups)

    @property
    def pages(self) -> int:
        return self.staged.pages

    @property
    def records(self) -> int:
        return self.staged.records

    @property
    def bytes(self) -> int:
        return self.staged.body_bytes

    @property
    def quarantine(self) -> list[tuple[str, str, str | None, str]]:
        return self.staged.quarantine

    def add(self, page: Page) -> None:
        fetched = datetime.fromtimestamp(page.fetched_at, UTC)
        self.staged.pages += 1
        self.staged.body_bytes += page.bytes
        self.staged.records += len(page.records)
        if page.api_total is not None:
            self.api_total = page.api_total
        self.next_request = page.next_request
        self.last_page = page.next_request is None
        # the fields every row of this page shares: _extracted_at, _run_id, _source_url
        suffix = b"".join(
            (
                (8).to_bytes(4, "big"),
                to_postgres_time(fetched),
                binary_field(self.run_id.encode()),
                binary_field(page.url.encode()),
            )
        )
        fields = self.primary_key
        single = fields[0] if len(fields) == 1 else None
        cursor_field = self.cursor_field
        nested_cursor = cursor_field is not None and "." in cursor_field
        shaped = page.shape is not None
        lines = record_lines(page)
        keyed = self._keyed_fast(page, lines, single) if shaped else None
        if keyed is not None:
            good, keys, texts = keyed
            size = sum(map(len, texts)) + sum(map(len, keys)) + 48 * len(keys)
        else:
            good, keys, texts, size = self._keyed(page, lines, fields, single, shaped)
        if len(set(keys)) != len(keys):
            good, keys, texts = self._one_per_key(good, keys, texts)
        if keys:
            self.staged.groups.append((suffix, keys, texts))
        self.size += size + len(suffix) * len(keys)
        if shaped:
            self.observer.observe_shaped(page.shape, good)  # type: ignore[arg-type]
        else:
            self.observer.observe_page(good)
        if cursor_field is not None:
            if nested_cursor:
                values = [dig(record, cursor_field) for record in good]
            elif shaped and cursor_field in page.shape.fields:  # type: ignore[union-attr]
                values = list(map(operator.attrgetter(cursor_field), good))
            elif shaped:
                values = [getattr(record, cursor_field, None) for record in good]
            else:
                values = [record.get(cursor_field) for record in good]
            if None in values:
                values = [v for v in values if v is not None]
            moment = latest_time(values, self.zone)
            if moment is not None and (self.cursor_max is None or moment > self.cursor_max):
                self.cursor_max = moment

    @staticmethod
    def _keyed_fast(
        page: Page, lines: list[Any], single: str | None
    ) -> tuple[list[Any], list[str], Texts] | None:
        """Records, keys and texts of a shaped page whose every record is well formed and has
        an integer key field (the common case, in C-level passes), else None."""
        if single is None or single not in page.shape.fields:  # type: ignore[union-attr]
            return None
        if Malformed in set(map(type, lines)):
            return None
        values = list(map(operator.attrgetter(single), page.records))
        if set(map(type, values)) != {int}:
            return None
        return list(page.records), list(map(str, values)), list(map(bytes, lines))

    def _keyed(
        self, page: Page, lines: list[Any], fields: list[str], single: str | None, shaped: bool
    ) -> tuple[list[Any], list[str], Texts, int]:
        """Record by record: good records, their keys and texts, and their size; malformed
        records and records without a usable key go to quarantine."""
        keys: list[str] = []
        texts: list[bytes] = []
        size = 0
        good: list[Any] = []
        for record, line in zip(page.records, lines, strict=True):
            if type(line) is Malformed:
                self._quarantine(record, str(line), None, page.url)
                continue
            # the common case first: one integer key field
            value = None
            if single is not None:
                if shaped:
                    value = getattr(record, single, None)
                elif type(record) is dict:
                    value = record.get(single)
            if type(value) is int:
                key = str(value)
            else:
                try:
                    key = primary_key(record, fields)
                except Malformed as exc:
                    self._quarantine(record, str(exc), bytes(line), page.url)
                    continue
            good.append(record)
            text = bytes(line)
            keys.append(key)
            texts.append(text)
            size += len(text) + len(key) + 48
        return good, keys, texts, size

    def _one_per_key(
        self, good: list[Any], keys: list[str], texts: Texts
    ) -> tuple[list[Any], list[str], Texts]:
        """A page's records with one per key: the one with the latest cursor value, and among
        equal ones the greatest JSON text, so the choice never depends on the order served
        (keeping both appended two versions on every run)."""
        best: dict[str, int] = {}
        for index, key in enumerate(keys):
            kept = best.get(key)
            if kept is None or self._rank(good[index], texts[index]) > self._rank(
                good[kept], texts[kept]
            ):
                best[key] = index
        chosen = sorted(best.values())
        staged = self.staged
        staged.duplicates += len(keys) - len(chosen)
        if len(staged.duplicate_keys) < 5:
            repeated = [key for key, n in Counter(keys).items() if n > 1]
            staged.duplicate_keys += repeated[: 5 - len(staged.duplicate_keys)]
        return [good[i] for i in chosen], [keys[i] for i in chosen], [texts[i] for i in chosen]

    def _rank(self, record: Any, text: Any) -> tuple[datetime, Any]:
        moment = None
        if self.cursor_field is not None:
            moment = cursor_time(dig(record, self.cursor_field), self.zone)
        return moment or datetime.min.replace(tzinfo=UTC), text

    def _quarantine(self, record: Any, reason: str, line: Any, url: str) -> None:
        if line is not None:
            raw = line.decode()
        elif isinstance(record, str):
            raw = record
        else:
            raw = json.dumps(record, default=str)  # ASCII: NUL and surrogates stay escaped
        value = field_of(record, self.primary_key[0])
        pk_hint = None if value is None else str(value)
        self.staged.quarantine.append((reason, raw, pk_hint, url))

    def full(self, max_rows: int) -> bool:
        """Records, not rows, count toward `max_rows`: a page of quarantined records adds no
        row, and a stream quarantining everything would otherwise hold it all until the end."""
        return self.staged.records >= max_rows or self.size >= MAX_BATCH_BYTES


class KeyFilter:
    """The keys this process has written to one raw table, as a Bloom filter of fixed size
    (32 MiB, two probes): 'maybe written' or 'surely not'. Memory stays flat however many
    keys pass; at 10 million keys about 0.5% of new keys are probed needlessly."""

    BITS = 1 << 28

    def __init__(self) -> None:
        self.bits = np.zeros(self.BITS >> 3, dtype=np.uint8)

    def _slots(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        hashes = np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys)).view(np.uint64)
        mask = np.uint64(self.BITS - 1)
        return hashes & mask, (hashes >> np.uint64(32)) & mask

    def _test(self, slots: np.ndarray) -> np.ndarray:
        shift = (slots & np.uint64(7)).astype(np.uint8)
        return (self.bits[slots >> np.uint64(3)] >> shift) & np.uint8(1)

    def maybe_written(self, keys: list[str]) -> list[str]:
        """The keys that may have been added before; then adds them all."""
        if not keys:
            return []
        first, second = self._slots(keys)
        hits = np.flatnonzero(self._test(first) & self._test(second))
        for slots in (first, second):
            shift = (slots & np.uint64(7)).astype(np.uint8)
            np.bitwise_or.at(self.bits, slots >> np.uint64(3), np.left_shift(np.uint8(1), shift))
        return [keys[i] for i in hits]


@dataclass
class Totals:
    """What one flush wrote, for the run's figures."""

    rows: int = 0
    unchanged: int = 0
    quarantined: int = 0


@contextlib.contextmanager
def loading_mode() -> Iterator[None]:
    """Process settings for a load, restored afterwards.

    - The cyclic GC mostly out of the way (tieout.memory.quiet_gc, young generation 50,000):
      decoded pages die by reference count, so collections found little and cost 15-20% of
      the loader's CPU.
    - A 0.5 ms GIL switch interval instead of 5 ms: the fetch thread, back from the socket
      with a page, otherwise waits up to 5 ms for the parsing thread to let go, and every
      page waits once; the API's round trip is on the critical path, parsing is not.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        with quiet_gc(50_000):
            yield
    finally:
        sys.setswitchinterval(interval)


def prepare_session(conn: psycopg.Connection[Any]) -> None:
    """Session settings for loading.

    synchronous_commit=off is safe here: a lost commit loses rows and their cursor together,
    which a rerun simply fetches again.
    """
    with conn.transaction():
        conn.execute("set synchronous_commit = off")


def new_versions(
    cur: psycopg.Cursor[Any], table: sql.Composed, encoded: Encoded, known: KeyFilter | None
) -> list[bytes]:
    """The rows that are new versions, in order: a row whose key's latest version (in raw, or
    earlier in this batch) has the same hash is left out. A latest version stored with the md5
    of the same text (how tieout hashed until 2026-12) is the same version too: upgrading adds none.

    `known` None means the table may hold any key, so every key is looked up; otherwise only
    the keys the filter says this process may already have written.
    """
    keys, digests, rows, texts = encoded
    distinct = list(dict.fromkeys(keys))
    lookup = distinct if known is None else known.maybe_written(distinct)
    latest: dict[str, str] = {}
    if lookup:
        cur.execute(sql.SQL(LATEST_HASHES).format(table=table), (lookup,))
        latest = dict(cur.fetchall())
    if not latest and len(distinct) == len(keys):
        return rows
    kept = []
    for key, digest, row, text in zip(keys, digests, rows, texts, strict=True):
        previous = latest.get(key)
        if previous != digest and (
            previous is None or previous != hashlib.md5(text).hexdigest()  # noqa: S324 - not security
        ):
            kept.append(row)
        latest[key] = digest
    return kept


def flush(
    conn: psycopg.Connection[Any],
    source: str,
    stream: str,
    run_id: str,
    staged: Staged,
    encoded: Encoded,
    state_update: dict[str, Any],
    run_counters: dict[str, Any],
    known: KeyFilter | None = None,
) -> Totals:
    """One transaction: COPY the batch's new versions (`encoded`: `staged.encoded()`, done by
    the caller) straight into raw, quarantine, sync_state, counters."""
    totals = Totals(quarantined=len(staged.quarantine))
    table = raw_table(source, stream)
    rows = encoded.rows
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            kept = new_versions(cur, table, encoded, known)
            if kept:
                copy_rows(cur, table, kept)
            totals.rows = len(kept)
        totals.unchanged = len(rows) - totals.rows
        add_quarantine(cur, source, stream, run_id, staged.quarantine)
        write_state(cur, source, stream, run_id, state_update)
        add_run_counters(
            cur,
            run_id,
            source,
            stream,
            {
                **run_counters,
                "records": staged.records,
                "rows": totals.rows,
                "unchanged": totals.unchanged,
                "pages": staged.pages,
                "bytes": staged.body_bytes,
                "quarantined": totals.quarantined,
                "duplicates": staged.duplicates,
            },
        )
    return totals


def add_quarantine(
    cur: psycopg.Cursor[Any],
    source: str,
    stream: str,
    run_id: str,
    rows: list[tuple[str, str, str | None, str]],
) -> None:
    """Keep malformed records (reason, raw text, key hint, URL) in ops.quarantine, once each."""
    if rows:
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
                for reason, raw, pk, url in rows
            ],
        )


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
    "duplicates",
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
