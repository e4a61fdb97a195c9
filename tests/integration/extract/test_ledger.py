"""A fifth source declared in YAML only loads exactly once, resumes, dedupes, quarantines,
logs schema drift, counts what it did and finds deletions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
import xxhash

from tieout import runs
from tieout.extract import plan
from tieout.extract.run import extract_stream


def raw(conn: psycopg.Connection) -> list[tuple[str, Any, bool]]:
    return conn.execute(
        "select _pk, _record, _deleted from raw.ledger__items order by _seq"
    ).fetchall()


def test_fifth_source_needs_yaml_only(ledger: Path, api: Any, conn: psycopg.Connection) -> None:
    assert ("ledger", "items") in plan.streams()
    assert plan.pools()["source_ledger"] == 1
    figures = extract_stream("ledger", "items", "run-1")
    assert figures["rows"] == 55 and figures["records"] == 55 and figures["pages"] == 3
    rows = raw(conn)
    assert [r[0] for r in rows] == [str(i) for i in range(1, 56)]
    assert rows[0][1] == api.state.records[0]
    state = conn.execute(
        "select cursor_value, resume from ops.sync_state where source = 'ledger'"
    ).fetchone()
    assert state == ("2026-01-01T00:00:55.000000+00:00", None)
    run = conn.execute(
        "select status, rows, pages, records, bytes > 0 from ops.extract_runs "
        "where run_id = 'run-1'"
    ).fetchone()
    assert run == ("success", 55, 3, 55, True)
    summary = runs.summary(run_id="run-1")
    assert summary["stages"]["extract"]["rows_by_source"] == {"ledger": 55}
    # extract connects as tieout_loader: the raw table it made is the loader's
    owner = conn.execute(
        "select pg_get_userbyid(relowner) from pg_class where oid = 'raw.ledger__items'::regclass"
    ).fetchone()
    assert owner == ("tieout_loader",)


def test_rerun_inside_lookback_adds_nothing(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    again = extract_stream("ledger", "items", "run-2")
    # the lookback (1h) re-reads every record; none is appended twice
    assert again["records"] == 55 and again["rows"] == 0 and again["unchanged"] == 55
    assert len(raw(conn)) == 55


def test_changed_records_append_versions_and_flapping_is_kept(
    ledger: Path, api: Any, fake: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    original = dict(api.state.records[4])
    api.state.records[4] = fake.make_record(5, version=1)
    assert extract_stream("ledger", "items", "run-2")["rows"] == 1
    api.state.records[4] = original  # back to the first version (e.g. a reverse-ETL fix)
    assert extract_stream("ledger", "items", "run-3", full_refresh=True)["rows"] == 1
    versions = [r[1]["name"] for r in raw(conn) if r[0] == "5"]
    assert versions == ["item 5 v0", "item 5 v1", "item 5 v0"]


def test_malformed_records_quarantined_rest_loads(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    api.state.records[3].pop("id")
    api.state.records[30]["id"] = None
    figures = extract_stream("ledger", "items", "run-1")
    assert figures["rows"] == 53 and figures["quarantined"] == 2
    reasons = conn.execute(
        "select reason, raw_text::jsonb ->> 'name' from ops.quarantine where source = 'ledger' "
        "order by id"
    ).fetchall()
    assert reasons == [
        ("primary key field 'id' is missing or not a scalar", "item 4 v0"),
        ("primary key field 'id' is missing or not a scalar", "item 31 v0"),
    ]
    # seen again on a rerun: counted, not duplicated
    extract_stream("ledger", "items", "run-2")
    assert conn.execute(
        "select count(*), min(times_seen) from ops.quarantine where source = 'ledger'"
    ).fetchone() == (2, 2)


def test_renamed_and_retyped_fields_logged_load_goes_on(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    for record in api.state.records:
        record["title"] = record.pop("name")
        record["amount"] = str(record["amount"])
    figures = extract_stream("ledger", "items", "run-2", full_refresh=True)
    assert figures["rows"] == 55
    changes = conn.execute(
        "select field, change, old_type, new_type from ops.schema_changes "
        "where source = 'ledger' and run_id = 'run-2' order by field"
    ).fetchall()
    assert changes == [
        ("amount", "retyped", "number", "string"),
        ("name", "missing", "string", None),
        ("title", "added", None, "string"),
    ]
    assert figures["schema_changes"] == 3
    # reported once: the next run sees the new shape as known
    extract_stream("ledger", "items", "run-3", full_refresh=True)
    assert conn.execute(
        "select count(*) from ops.schema_changes where source = 'ledger' and run_id = 'run-3'"
    ).fetchone() == (0,)


def test_faults_end_with_every_record_once(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    api.state.fail_next = [503, 500, 429, 502]
    api.state.retry_after = "0"
    api.state.hang_next = 1
    api.state.broken_next = 1
    figures = extract_stream("ledger", "items", "run-1")
    assert figures["rows"] == 55 and figures["retries"] >= 6 and figures["http_429"] == 1
    assert sorted(int(r[0]) for r in raw(conn)) == list(range(1, 56))


def test_deletion_scan_marks_vanished_records(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    gone = api.state.records.pop(9)
    figures = extract_stream("ledger", "items", "run-2", deletion_scan=True)
    assert figures["deleted"] == 1
    deleted = [r[0] for r in raw(conn) if r[2]]
    assert deleted == ["10"]
    # scanned again: already marked, nothing new; the record comes back: a live version again
    assert extract_stream("ledger", "items", "run-3", deletion_scan=True)["deleted"] == 0
    api.state.records.insert(9, gone)
    assert extract_stream("ledger", "items", "run-4", full_refresh=True)["rows"] == 1
    assert [r[2] for r in raw(conn) if r[0] == "10"] == [False, True, False]


def test_records_jsonb_refuses_are_quarantined_one_by_one(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    records = api.state.records
    records[2]["name"] = "nul \x00 inside"  # served as \u0000: strict JSON, but not for jsonb
    records[10]["amount"] = float("nan")  # served as NaN: not JSON at all
    records[20]["name"] = "lone \ud800 surrogate"  # served as \ud800: not Unicode
    records[30]["name"] = "\\u0000 is only text here"  # an escaped backslash: fine
    figures = extract_stream("ledger", "items", "run-1")
    assert figures["rows"] == 52 and figures["quarantined"] == 3
    reasons = conn.execute(
        "select pk, reason from ops.quarantine where source = 'ledger' order by pk::int"
    ).fetchall()
    assert reasons == [
        ("3", "record contains a NUL character, which PostgreSQL jsonb cannot store"),
        ("11", "record contains nan, which is not JSON"),
        ("21", "record contains an invalid Unicode surrogate, which jsonb cannot store"),
    ]
    loaded = {r[0]: r[1] for r in raw(conn)}
    assert loaded["31"]["name"] == "\\u0000 is only text here"
    assert {str(i) for i in range(1, 56)} - set(loaded) == {"3", "11", "21"}


def test_record_served_twice_in_one_pass_is_loaded_once(
    ledger: Path, api: Any, fake: Any, conn: psycopg.Connection
) -> None:
    # an offset shift serves record 5 again 40 records later (another commit batch), and
    # record 7 comes back changed: one duplicate dropped, one new version kept
    records = api.state.records
    records.insert(45, dict(records[4]))
    records.insert(50, fake.make_record(7, version=1))
    figures = extract_stream("ledger", "items", "run-1")
    assert figures["records"] == 57 and figures["rows"] == 56 and figures["unchanged"] == 1
    versions = [(r[0], r[1]["name"]) for r in raw(conn) if r[0] in {"5", "7"}]
    assert versions == [("5", "item 5 v0"), ("7", "item 7 v0"), ("7", "item 7 v1")]


def test_hash_is_xxh3_of_the_record_as_served(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    first = conn.execute(
        "select _record_hash, _run_id, _source_url from raw.ledger__items where _pk = '1'"
    ).fetchone()
    served = json.dumps(api.state.records[0]).encode()  # the fake API's own serialization
    assert first == (
        xxhash.xxh3_128_hexdigest(served),
        "run-1",
        f"{api.url}/pages/items?page=1&per_page=20",
    )


def test_versions_hashed_with_md5_before_are_not_loaded_again(
    ledger: Path, api: Any, fake: Any, conn: psycopg.Connection
) -> None:
    """Raw tables written before 2026-12 hold md5 hashes: the same text is no new version."""
    extract_stream("ledger", "items", "run-1")
    with conn.transaction():
        for record in api.state.records:
            served = json.dumps(record).encode()
            conn.execute(
                "update raw.ledger__items set _record_hash = %s where _pk = %s",
                (hashlib.md5(served).hexdigest(), str(record["id"])),
            )
    api.state.records[6] = fake.make_record(7, version=1)
    again = extract_stream("ledger", "items", "run-2")
    assert again["rows"] == 1 and again["unchanged"] == 54
    assert [r[0] for r in raw(conn)][-1] == "7" and len(raw(conn)) == 56
