"""The writer thread commits batches in order; a failed batch stops it and says why."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import psycopg
import pytest

from tieout.extract import load, paginate
from tieout.extract.schema_drift import Observer
from tieout.extract.writer import LoadFailed, Writer


def batch_of(ids: range) -> load.Batch:
    body = b'{"data": [' + b",".join(b'{"id": %d}' % i for i in ids) + b"]}"
    _, records, texts, strict, shape = paginate.read_page(body, "data")
    page = paginate.Page(
        {}, "http://api.test/x", records, None, len(body), None, 0.0, strict, texts, shape
    )
    batch = load.Batch(["id"], None, ZoneInfo("UTC"), Observer(), "run-w")
    batch.add(page)
    return batch


def raw_keys(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select _pk from raw.wtest__items order by _seq")]


def test_batches_commit_in_order_and_a_failure_stops_the_rest(
    warehouse_url: str, conn: psycopg.Connection
) -> None:
    conn.execute("drop table if exists raw.wtest__items")
    load.ensure_raw_table(conn, "wtest", "items")
    writer = Writer(warehouse_url, "wtest", "items", "run-w")
    for start in (1, 4, 7):
        writer.submit(batch_of(range(start, start + 3)), {}, {})
    totals = writer.close()
    assert totals.rows == 9 and raw_keys(conn) == [str(i) for i in range(1, 10)]

    # a batch whose commit fails (its resume point cannot be stored): it and every batch
    # after it stay out of raw, and a later submit or close says why
    writer = Writer(warehouse_url, "wtest", "items", "run-w")
    writer.submit(batch_of(range(10, 12)), {"resume": {"at": object()}}, {})
    with pytest.raises(LoadFailed, match="TypeError"):
        for start in range(20, 2000, 2):
            writer.submit(batch_of(range(start, start + 2)), {}, {})
        writer.close()
    with pytest.raises(LoadFailed):
        writer.close()  # and keeps saying it
    assert raw_keys(conn) == [str(i) for i in range(1, 10)]
