"""Find records that disappeared from a source without a tombstone: page through every key and
append a deleted version for each raw key the source no longer serves.

It marks only after a complete scan in which every key was readable; it never deletes raw rows.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from tieout.config import Source, Stream
from tieout.extract import paginate
from tieout.extract.load import raw_table
from tieout.extract.records import Malformed, copy_text, primary_key
from tieout.http.client import Client


class DeletionScanRefused(RuntimeError):
    """The key scan was incomplete or saw unreadable keys, so nothing was marked."""


def scan(
    client: Client,
    conn: psycopg.Connection[Any],
    source: Source,
    stream: Stream,
    run_id: str,
    base_url: str,
) -> int:
    """Full key scan of the stream; returns how many keys were marked deleted."""
    paginator = stream.paginator or source.paginator
    page_size = stream.page_size or source.page_size
    request = paginate.first_request(
        paginator, base_url + stream.path, dict(stream.params), page_size
    )
    unreadable = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("create temp table _tieout_keys (_pk text not null) on commit drop")
        for page in paginate.pages(client, paginator, request, stream.records_path):
            with cur.copy("copy _tieout_keys (_pk) from stdin") as cp:
                for record in page.records:
                    try:
                        cp.write(copy_text(primary_key(record, stream.primary_key)) + "\n")
                    except Malformed:
                        unreadable += 1
        if unreadable:
            raise DeletionScanRefused(
                f"{source.name}.{stream.name}: deletion scan saw {unreadable} records without a "
                "readable key; nothing was marked deleted"
            )
        cur.execute("create index on _tieout_keys (_pk)")
        cur.execute("analyze _tieout_keys")
        cur.execute(
            sql.SQL(
                """insert into {table}
                       (_pk, _record, _record_hash, _extracted_at, _run_id, _source_url, _deleted)
                   select latest._pk, latest._record, md5(latest._record_hash || ':deleted'),
                          now(), %(run_id)s, 'deletion-scan', true
                   from (
                       select distinct on (_pk) _pk, _record, _record_hash, _deleted
                       from {table} order by _pk, _seq desc
                   ) latest
                   where not latest._deleted
                     and not exists (select 1 from _tieout_keys k where k._pk = latest._pk)"""
            ).format(table=raw_table(source.name, stream.name)),
            {"run_id": run_id},
        )
        return max(cur.rowcount, 0)
