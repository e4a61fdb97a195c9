"""The loader's in-memory parts: COPY rows built from served text, the key filter."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import xxhash

from tieout.extract import load, paginate
from tieout.extract.schema_drift import Observer


def page_of(body: bytes, path: str | None = "items", shape: object = None) -> paginate.Page:
    _, records, texts, strict, used = paginate.read_page(body, path, shape)  # type: ignore[arg-type]
    return paginate.Page(
        {},
        "http://api.test/items?page=2",
        records,
        None,
        len(body),
        None,
        0.0,
        strict,
        texts,
        used,
    )


def columns(row: bytes) -> list[bytes]:
    """The fields of one binary COPY tuple."""
    count, at, fields = int.from_bytes(row[:2], "big"), 2, []
    for _ in range(count):
        size = int.from_bytes(row[at : at + 4], "big")
        fields.append(row[at + 4 : at + 4 + size])
        at += 4 + size
    assert at == len(row) and count == 6
    return fields


def test_rows_carry_the_served_text_its_hash_and_provenance() -> None:
    served = [
        b'{"id": 7,\n "name": "tab\\there"}',
        b'{"id":"a\\\\b","name":"x"}',
        b'{"name":"no id"}',
    ]
    batch = load.Batch(["id"], None, ZoneInfo("UTC"), Observer(), "run\t1")
    batch.add(page_of(b'{"items": [' + b",".join(served) + b"]}"))
    keys, digests, rows, texts = batch.staged.encoded()
    assert keys == ["7", "a\\b"] and len(batch.quarantine) == 1
    pk, text, digest, extracted, run_id, url = columns(rows[0])
    assert pk == b"7" and text == b"\x01" + served[0]  # jsonb version 1, then the text as is
    assert digest.decode() == xxhash.xxh3_128_hexdigest(served[0]) == digests[0]
    assert texts == served[:2]
    assert extracted == (-946_684_800_000_000).to_bytes(8, "big", signed=True)  # 1970 in PG time
    assert run_id == b"run\t1" and url == b"http://api.test/items?page=2"
    assert columns(rows[1])[0] == b"a\\b"
    reason, raw, pk_hint, _ = batch.quarantine[0]
    assert "primary key field 'id'" in reason and raw == served[2].decode() and pk_hint is None


def test_lenient_pages_are_encoded_record_by_record() -> None:
    batch = load.Batch(["id"], None, ZoneInfo("UTC"), Observer(), "r")
    batch.add(page_of(b'[{"id": 1, "x": NaN}, {"id": 2, "b": 1, "a": 2}]', None))
    assert (
        batch.staged.encoded()[0] == ["2"]
        and batch.quarantine[0][0] == "record contains nan, which is not JSON"
    )
    assert columns(batch.staged.encoded()[2][0])[1] == b'\x01{"a":2,"b":1,"id":2}'  # canonical


def test_cursor_max_and_fields_are_observed() -> None:
    observer = Observer()
    batch = load.Batch(["id"], "at", ZoneInfo("UTC"), observer, "r")
    batch.add(
        page_of(
            b'[{"id": 1, "at": "2026-01-02T00:00:00-05:00"},'
            b' {"id": 2, "at": "2026-01-02T04:00:00Z"}]',
            None,
        )
    )
    assert batch.cursor_max == datetime(2026, 1, 2, 5, tzinfo=UTC)  # the later instant
    assert observer.fields() == {"id": ({"number"}, 2), "at": ({"string"}, 2)}


def test_key_filter_never_forgets_and_rarely_imagines() -> None:
    known = load.KeyFilter()
    first = [str(random.randrange(10**12)) for _ in range(50_000)]
    assert len(known.maybe_written(first)) < 10  # nothing was added before
    assert known.maybe_written(first[:1000] + ["new-1", "new-2"]) == first[:1000]
    fresh = [f"fresh-{i}" for i in range(50_000)]
    assert len(known.maybe_written(fresh)) < 50  # false positives stay rare


def _record(rng: random.Random, i: int) -> dict[str, object]:
    record: dict[str, object] = {
        "id": i,
        "name": f"n{i}",
        "at": f"2026-01-{1 + i % 28:02d}T00:00:00Z",
        "customer": {"id": i % 7, "tier": rng.choice(["a", "b"])},
        "lines": [{"sku": "x", "qty": 1}] * (i % 3),
        "closed_at": None,
    }
    if rng.random() < 0.03:
        record["closed_at"] = "2026-02-01T00:00:00Z"  # a second type for a field
    if rng.random() < 0.02:
        record["extra"] = 1  # a new field
    if rng.random() < 0.02:
        del record["name"]  # a missing field
    if rng.random() < 0.02:
        record["customer"] = {"id": "7", "tier": "a", "since": 2020}  # retyped, one more field
    if rng.random() < 0.01:
        record["id"] = None  # no key: quarantined
    return record


def _load(pages: list[bytes], shaped: bool) -> tuple[load.Batch, Observer, int]:
    observer = Observer()
    batch = load.Batch(["id"], "at", ZoneInfo("UTC"), observer, "r")
    used = 0
    for body in pages:
        page = page_of(body, "items", observer.shape if shaped else None)
        used += page.shape is not None
        batch.add(page)
    return batch, observer, used


def test_shaped_pages_load_and_observe_exactly_like_plain_ones() -> None:
    rng = random.Random(5)
    records = [_record(rng, i) for i in range(3000)]
    pages = [
        json.dumps({"items": records[i : i + 50], "next": i}).encode()
        for i in range(0, len(records), 50)
    ]
    plain, plain_observer, _ = _load(pages, shaped=False)
    fast, fast_observer, used = _load(pages, shaped=True)
    assert used > 10  # most pages fit the shape of what came before
    assert fast_observer.fields() == plain_observer.fields()
    assert fast_observer.records() == plain_observer.records()
    assert fast.staged.encoded() == plain.staged.encoded()
    assert fast.cursor_max == plain.cursor_max and fast.quarantine == plain.quarantine


def test_a_page_that_does_not_fit_the_shape_is_read_plainly() -> None:
    observer = Observer()
    observer.observe_page([{"id": 1, "a": {"b": "x"}}])
    assert observer.shape is not None
    for body in (
        b'{"items": [{"id": 2, "a": {"b": "y", "c": 1}}]}',
        b'{"items": [{"id": "2", "a": {"b": "y"}}]}',
        b'{"items": [{"id": 2}]}',
    ):
        _, records, _, strict, used = paginate.read_page(body, "items", observer.shape)
        assert used is None and strict and type(records[0]) is dict
    _, records, _, _, used = paginate.read_page(
        b'{"items": [{"a": {"b": "z"}, "id": 3}]}', "items", observer.shape
    )
    assert used is observer.shape and records[0].id == 3 and records[0].a.b == "z"
