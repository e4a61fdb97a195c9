"""Every paginator kind reads every record of the fake API exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tieout.config import (
    BodyCursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    StartingAfterPaginator,
)
from tieout.extract import paginate
from tieout.extract.records import Malformed, field_of
from tieout.extract.schema_drift import Observer
from tieout.http.auth import HeaderAuth
from tieout.http.budget import LocalBudget
from tieout.http.client import Client, Settings

CASES: list[tuple[str, Any, str | None]] = [
    ("/offset/items", OffsetPaginator(kind="offset", total_path="total"), "items"),
    ("/offset/items", OffsetPaginator(kind="offset"), "items"),
    (
        "/pages/items",
        PageNumberPaginator(kind="page_number", total_pages_path="meta.total_pages"),
        "data",
    ),
    ("/pages/items", PageNumberPaginator(kind="page_number"), "data"),
    (
        "/cursor/items",
        BodyCursorPaginator(
            kind="body_cursor", cursor_path="paging.next.after", cursor_param="after"
        ),
        "results",
    ),
    ("/after/items", StartingAfterPaginator(kind="starting_after"), "data"),
    ("/link/items", LinkHeaderPaginator(kind="link_header"), None),
]


def client(api_key: str = "key-123456") -> Client:
    return Client(
        HeaderAuth("X-API-Key", api_key),
        Settings(max_retries=2, backoff_base_s=0),
        LocalBudget(1000, 1000),
        "fake.items",
    )


@pytest.mark.parametrize(
    ("path", "spec", "records_path"), CASES, ids=lambda c: getattr(c, "kind", c)
)
@pytest.mark.parametrize("page_size", [10, 11, 55, 100])
def test_every_record_once(
    api: Any, path: str, spec: Any, records_path: str | None, page_size: int
) -> None:
    request = paginate.first_request(spec, api.url + path, {}, page_size)
    pages = list(paginate.pages(client(), spec, request, records_path))
    ids = [r["id"] for p in pages for r in p.records]
    assert ids == list(range(1, 56))
    assert pages[-1].next_request is None
    assert all(p.next_request is not None for p in pages[:-1])


def test_resume_from_saved_request(api: Any) -> None:
    spec = LinkHeaderPaginator(kind="link_header")
    request = paginate.first_request(spec, api.url + "/link/items", {}, 20)
    first = next(paginate.pages(client(), spec, request, None))
    saved = first.next_request
    assert saved is not None
    rest = list(paginate.pages(client(), spec, saved, None))
    ids = [r["id"] for p in [first, *rest] for r in p.records]
    assert ids == list(range(1, 56))


def test_starting_after_skips_records_without_id(api: Any) -> None:
    api.state.records[19].pop("id")
    spec = StartingAfterPaginator(kind="starting_after")
    request = paginate.first_request(spec, api.url + "/after/items", {}, 20)
    pages = list(paginate.pages(client(), spec, request, "data"))
    ids = [r.get("id") for p in pages for r in p.records if r.get("id") is not None]
    assert ids == [i for i in range(1, 56) if i != 20]


def test_dig() -> None:
    assert paginate.dig({"a": {"b": {"c": 3}}}, "a.b.c") == 3
    assert paginate.dig({"a": 1}, "a.b") is None
    assert paginate.dig([1], None) == [1]


def test_decode_body_strict_then_lenient() -> None:
    body, strict = paginate.decode_body(
        b'{"items": [{"id": 1, "a": "x\\\\y"}], "n": 12345678901234567890123}'
    )
    assert strict and body == {"items": [{"id": 1, "a": "x\\y"}], "n": 12345678901234567890123}
    # NaN and lone surrogates are not JSON: the lenient parser keeps the page readable
    body, strict = paginate.decode_body(b'{"items": [{"id": 1, "x": NaN}, {"id": 2}]}')
    assert not strict and body["items"][1] == {"id": 2}
    body, strict = paginate.decode_body(b'[{"id": 1, "x": "\\ud800"}]')
    assert not strict and body[0]["x"] == "\ud800"
    for broken in (b'{"items": [{"id": 1}', b"", b"[1] x"):
        with pytest.raises(ValueError, match="invalid JSON"):
            paginate.decode_body(broken)
    with pytest.raises(ValueError, match="not UTF-8"):
        paginate.decode_body(b'["\xff"]')


def test_a_scanned_page_parses_to_the_same_records() -> None:
    body = b'{"has_more": true, "data": [{"id": 1, "a": {"b": 2}}, {"id": 2, "a": {"b": 3}}]}'
    scanned, records, texts, strict, parsed = paginate.scan_page(body, "data", ("has_more",))
    assert scanned == {"data": records, "has_more": True} and strict and not parsed
    assert [bytes(t) for t in texts or []] == [
        b'{"id": 1, "a": {"b": 2}}',
        b'{"id": 2, "a": {"b": 3}}',
    ]
    assert field_of(records[-1], "id") == 2  # what starting_after paging reads
    page = paginate.Page(
        {}, "u", records, None, len(body), None, 0.0, strict, texts, None, False, body
    )
    full = paginate.parsed_page(page, "data", None)
    assert full.parsed and full.records == [{"id": 1, "a": {"b": 2}}, {"id": 2, "a": {"b": 3}}]
    # a truncated body fails the scan (so the request is retried); NaN falls back to a parse
    with pytest.raises(ValueError):
        paginate.scan_page(body[:40], "data", ("has_more",))
    lenient = paginate.scan_page(b'{"data": [{"id": 1, "x": NaN}]}', "data", ())
    assert lenient[3] is False and lenient[4] is True


def _scanned(body: bytes) -> paginate.Page:
    _, records, texts, strict, parsed = paginate.scan_page(body, "data", ())
    return paginate.Page(
        {}, "u", records, None, len(body), None, 0.0, strict, texts, None, parsed, body
    )


def test_a_scanned_page_parses_into_the_shape_a_chunk_at_a_time() -> None:
    records = [{"id": i, "a": {"b": i}, "note": "x" * (i % 3)} for i in range(60)]
    observer = Observer()
    observer.observe_page(records)
    shape = observer.shape
    assert shape is not None and paginate.PARSE_CHUNK < 60
    body = json.dumps({"data": records}).encode()
    full = paginate.parsed_page(_scanned(body), "data", shape)
    _, whole, _, _, used = paginate.read_page(body, "data", shape)
    assert full.shape is shape and used is shape and full.parsed
    assert full.records == whole and len(whole) == 60 and full.records[59].id == 59
    # one record the shape does not fit (a text id): the page is read plainly, nothing lost
    odd = json.dumps({"data": [*records, {"id": "x", "a": {"b": 1}, "note": ""}]}).encode()
    plain = paginate.parsed_page(_scanned(odd), "data", shape)
    assert plain.shape is None and len(plain.records) == 61 and plain.records[60]["id"] == "x"


# ---------------------------------------------------------------- bad bodies


def test_cut_deep_replaces_only_what_is_too_deep() -> None:
    body = b'{"a": [[["x"]]], "b": "[[[\\"[", "c": {"d": {}}}'
    deep = paginate.DEEP
    assert paginate.cut_deep(body, limit=2) == (
        b'{"a": [' + deep + b'], "b": "[[[\\"[", "c": {"d": ' + deep + b"}}"
    )
    assert paginate.cut_deep(body, limit=3) == (
        b'{"a": [[' + paginate.DEEP + b']], "b": "[[[\\"[", "c": {"d": {}}}'
    )
    assert paginate.cut_deep(body, limit=4) == body


def test_a_record_too_deep_for_the_parser_is_marked_the_rest_read() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    body = b'{"data": [{"id": 1, "x": ' + deep + b'}, {"id": 2, "x": "[[["}], "more": true}'
    for read in (paginate.read_page, lambda c, p: paginate.scan_page(c, p, ("more",))):
        found, records, texts, strict, _ = read(body, "data")
        assert found["more"] is True and strict and len(records) == 2
        assert isinstance(texts[0], Malformed) and "nested deeper than 256" in str(texts[0])
        assert json.loads(bytes(texts[1])) == {"id": 2, "x": "[[["}


@pytest.mark.parametrize(
    ("body", "top_level"),
    [
        (b'{"data": [], "meta": {}}', "an object with keys 'data', 'meta'"),
        (b"[1, 2]", "a list of 2 items"),
        (b'{"results": null}', "an object with keys 'results'"),
        (b"{}", "an empty object"),
    ],
)
def test_records_path_without_a_list_says_what_the_body_holds(body: bytes, top_level: str) -> None:
    with pytest.raises(paginate.RecordsNotFound) as failed:
        paginate.read_page(body, "results")
    assert str(failed.value) == (
        f"records_path 'results' finds no list of records in the body; "
        f"the body's top level is {top_level}"
    )
    assert not isinstance(failed.value, ValueError)  # Client.get retries ValueError only


BASE = "https://api.example.com/v2"
OFFSET = OffsetPaginator(kind="offset")
LINK = LinkHeaderPaginator(kind="link_header")


def test_saved_request_keeps_no_base_url() -> None:
    request = {"url": BASE + "/items", "params": {"offset": 40}}
    saved = paginate.saved_request(request, BASE)
    assert saved == {"path": "/items", "params": {"offset": 40}}
    moved = "https://api.example.org/v2"
    assert paginate.resumed_request(saved, moved, moved + "/items", OFFSET) == {
        "url": moved + "/items",
        "params": {"offset": 40},
    }
    elsewhere = {"url": "https://cdn.example.net/next?page_info=x", "params": {}}
    kept = paginate.saved_request(elsewhere, BASE)
    assert "api.example.com" not in json.dumps(kept)
    assert paginate.resumed_request(kept, BASE, BASE + "/items", LINK) == elsewhere
    assert paginate.saved_request(None, BASE) is None
    query_only = {"url": BASE + "?page_info=y", "params": {}}
    assert paginate.saved_request(query_only, BASE) == {"path": "?page_info=y", "params": {}}
    assert paginate.saved_request({"url": BASE + "x/items", "params": {}}, BASE) == {
        "other_host_url": BASE + "x/items",
        "params": {},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (OFFSET, "https://right.example.com/v2/items"),
        (LINK, "https://right.example.com/v2/items?page_info=abc"),
    ],
)
def test_legacy_resume_point_ignores_its_stored_host(spec: Any, expected: str) -> None:
    legacy = {"url": "http://wrong.example.com/v2/items?page_info=abc", "params": {"limit": 5}}
    base = "https://right.example.com/v2"
    if spec is OFFSET:
        legacy["url"] = "http://wrong.example.com/v2/items"
    resumed = paginate.resumed_request(legacy, base, base + "/items", spec)
    assert resumed == {"url": expected, "params": {"limit": 5}}
