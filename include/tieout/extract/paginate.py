"""Page through one stream: each paginator kind turns a page into the request for the next one.

A request is plain JSON (url + params) so it can be saved as the resume point; this module
must never keep more than the page in hand.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import requests

from tieout.config import (
    BodyCursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePage,
    StartingAfterPaginator,
)
from tieout.extract.records import NUL, Malformed, encode_page, field_of, served_checked
from tieout.extract.schema_drift import Shape
from tieout.http.client import Client

PaginatorSpec = (
    OffsetPaginator
    | PageNumberPaginator
    | BodyCursorPaginator
    | StartingAfterPaginator
    | LinkHeaderPaginator
    | SinglePage
)


@dataclass
class Page:
    request: dict[str, Any]
    url: str
    records: list[Any]
    next_request: dict[str, Any] | None
    bytes: int
    api_total: int | None
    fetched_at: float
    strict: bool = True  # parsed as strict JSON: every record is storable as it is
    texts: list[Any] | None = None  # each record's JSON exactly as served (bytes-like), if strict
    shape: Shape | None = None  # the records are instances of shape.record, not dicts
    parsed: bool = True  # False: records are still raw JSON (msgspec.Raw), see parsed_page
    content: builtins.bytes = b""  # the body, kept until the page is parsed


_decode = msgspec.json.Decoder().decode

# JSON nested deeper than the parsers' recursion limit (msgspec and Python's both stop near
# 1,000 levels) is read by cutting every array or object deeper than MAX_DEPTH out of the
# body and putting DEEP in its place; the records that held one are quarantined.
MAX_DEPTH = 256
DEEP = b'"<tieout: nested deeper than 256 levels, cut here>"'
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class RecordsNotFound(RuntimeError):
    """The stream's records_path finds no list in a page body: a configuration error, not a
    bad page, so it is never retried."""

    def __init__(self, records_path: str | None, body: Any) -> None:
        self.records_path = records_path
        self.top_level = describe(body)
        self.url = ""
        super().__init__(self.explain())

    def explain(self) -> str:
        where = f"records_path {self.records_path!r}" if self.records_path else "no records_path"
        url = f" of GET {self.url}" if self.url else ""
        return (
            f"{where} finds no list of records in the body{url}; "
            f"the body's top level is {self.top_level}"
        )


def describe(body: Any) -> str:
    """What a decoded body holds at its top level, for a configuration error."""
    if isinstance(body, dict):
        keys = list(body)
        shown = ", ".join(repr(str(k)) for k in keys[:12]) + (", ..." if len(keys) > 12 else "")
        return f"an object with keys {shown}" if keys else "an empty object"
    if isinstance(body, list):
        return f"a list of {len(body)} items"
    return "null" if body is None else f"a JSON {type(body).__name__} ({str(body)[:40]!r})"


def cut_deep(content: bytes, limit: int = MAX_DEPTH) -> bytes:
    """The body with each array or object nested more than `limit` deep replaced by DEEP.
    Only for a body the parser refused for its depth; strings are skipped whole by a regex."""
    parts: list[bytes] = []
    depth, cut_from, last = 0, -1, 0
    for match in _STRING_OR_BRACKET.finditer(content):
        char = content[match.start()]
        if char in b"[{":
            depth += 1
            if depth == limit + 1:
                cut_from = match.start()
        elif char in b"]}":
            if depth == limit + 1 and cut_from >= 0:
                parts += (content[last:cut_from], DEEP)
                last, cut_from = match.end(), -1
            depth -= 1
    parts.append(content[last:])
    return b"".join(parts)


def _deep_marked(texts: list[Any]) -> list[Any]:
    reason = Malformed(
        f"record is nested deeper than {MAX_DEPTH} levels (the JSON parser's limit is near "
        f"1,000); quarantined with the part deeper than {MAX_DEPTH} cut out"
    )
    return [
        reason if type(text) is not Malformed and DEEP in bytes(text) else text for text in texts
    ]


def decode_body(content: bytes) -> tuple[Any, bool]:
    """A page body as JSON and whether the strict parser read it.

    msgspec parses strict JSON in C; a body it refuses is tried once more with Python's lenient
    parser, so a page with one NaN or lone surrogate still loads its good records (the bad ones
    are quarantined later). Raises ValueError when neither can read it.
    """
    try:
        return _decode(content), True
    except UnicodeDecodeError:
        raise ValueError("page body is not UTF-8") from None
    except msgspec.DecodeError as strict_error:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("page body is not UTF-8") from None
        try:
            # Python's own parser keeps NaN and lone surrogates, for quarantine record by record
            return json.loads(text), False
        except json.JSONDecodeError:
            raise ValueError(f"invalid JSON ({strict_error})") from None


@functools.lru_cache(maxsize=64)
def _envelope(record: Any, records_path: str | None, keys: tuple[str, ...]) -> Any:
    """A decoder for the record list at `records_path`, each record as `record` (msgspec.Raw:
    its served bytes; a Shape's Struct: parsed and checked), plus the top-level body `keys`
    the paginator reads. Nothing else in the body is parsed."""
    shape: Any = list[record]
    parts = records_path.split(".") if records_path else []
    for depth, part in reversed(list(enumerate(parts))):
        members: list[Any] = [("value", shape)]
        if depth == 0:
            members += [(key, Any, msgspec.UNSET) for key in keys if key != part]
        shape = msgspec.defstruct("Envelope", members, rename={"value": part})
    return msgspec.json.Decoder(shape)


def _opened(found: Any, records_path: str | None, keys: tuple[str, ...]) -> tuple[Any, list[Any]]:
    """The body (records at their path plus the paging keys) and the records of an envelope."""
    if not records_path:
        return found, found
    parts = records_path.split(".")
    body = {
        key: value
        for key in keys
        if (value := getattr(found, key, msgspec.UNSET)) is not msgspec.UNSET
    }
    records, node = found, body
    for _part in parts:
        records = records.value
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = records
    return body, records


def _enveloped(records_path: str | None, keys: tuple[str, ...]) -> bool:
    """Whether an envelope can stand for the body: the records' container is no paging key."""
    return records_path is None or records_path.split(".")[0] not in keys


def served_records(content: bytes, records_path: str | None) -> list[Any]:
    """Each record's JSON exactly as served, as bytes-like views of the body (no parse into
    objects: ~0.3 us a record). Only for bodies the strict parser has read."""
    return list(
        _opened(_envelope(msgspec.Raw, records_path, ()).decode(content), records_path, ())[1]
    )


def read_page(
    content: bytes,
    records_path: str | None,
    shape: Shape | None = None,
    body_keys: tuple[str, ...] = (),
) -> tuple[Any, list[Any], list[Any] | None, bool, Shape | None]:
    """The body, its records, each record's served JSON (None after a lenient parse), whether
    the parse was strict and the shape the records were decoded into (None: plain dicts).

    With a `shape`, the page is scanned and its records decoded into the shape when they all
    fit, and the body keeps only `body_keys` (what the paginator reads); else the page is
    parsed as plain JSON. RecordsNotFound when there is no record list at the path, ValueError
    when the body is not JSON.
    """
    if shape is not None:
        body, records, texts, strict, parsed = scan_page(content, records_path, body_keys)
        if parsed:  # not strict JSON, or a layout the scan leaves whole: read plainly already
            return body, records, texts, strict, None
        fitted = _into_shape(texts or [], shape, content)
        if fitted is not None:
            shaped, served = fitted
            return _with_records(body, records_path, shaped), shaped, served, True, shape
    try:
        body, strict = decode_body(content)
        deep = False
    except RecursionError:
        content, deep = cut_deep(content), True
        body, strict = decode_body(content)
    records = dig(body, records_path)
    if not isinstance(records, list):
        raise RecordsNotFound(records_path, body)
    texts = served_records(content, records_path) if strict else None
    if texts is not None and NUL in content:
        texts = served_checked(records, texts)
    if deep:
        texts = _deep_marked(texts if texts is not None else encode_page(records))
    return body, records, texts, strict, None


def _with_records(body: Any, records_path: str | None, records: list[Any]) -> Any:
    """A scanned body (see _opened) with its raw records replaced by parsed ones."""
    if not records_path:
        return records
    node = body
    *parents, last = records_path.split(".")
    for part in parents:
        node = node[part]
    node[last] = records
    return body


def scan_page(
    content: bytes, records_path: str | None, body_keys: tuple[str, ...] = ()
) -> tuple[Any, list[Any], list[Any] | None, bool, bool]:
    """What paging needs from a page without parsing its records: the body's paging keys and
    each record as raw JSON, the syntax checked in C (~0.3 us a record). Returns body, records,
    served texts, strict and whether the records are parsed already (a lenient or nested
    page is parsed whole here); ValueError when the page cannot be read."""
    if _enveloped(records_path, body_keys):
        try:
            found = _envelope(msgspec.Raw, records_path, body_keys).decode(content)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # not strict JSON, not a record list or too deep: the full parse says which
        else:
            body, records = _opened(found, records_path, body_keys)
            return body, records, records, True, False
    body, records, texts, strict, _ = read_page(content, records_path)
    return body, records, texts, strict, True


# Records a shaped parse decodes per call (about 60 us): between calls the fetch thread can
# take the GIL, where one call for the whole page held it for ~0.6 ms while the API waited.
PARSE_CHUNK = 25


@functools.lru_cache(maxsize=64)
def _record_decoder(record: Any) -> Any:
    return msgspec.json.Decoder(record)


def shaped_records(texts: list[Any], shape: Shape) -> list[Any] | None:
    """The scanned records decoded into `shape`, PARSE_CHUNK at a time; None if any does not
    fit (then the page is read plainly)."""
    decode = _record_decoder(shape.record).decode
    records: list[Any] = []
    try:
        for start in range(0, len(texts), PARSE_CHUNK):
            records += map(decode, texts[start : start + PARSE_CHUNK])
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return records


def _into_shape(
    texts: list[Any], shape: Shape, content: bytes
) -> tuple[list[Any], list[Any]] | None:
    """Scanned records decoded into `shape` and their served texts (a record holding NUL
    marked Malformed), or None if any does not fit."""
    records = shaped_records(texts, shape)
    if records is None:
        return None
    return records, served_checked(records, texts) if NUL in content else texts


def parsed_page(page: Page, records_path: str | None, shape: Shape | None) -> Page:
    """A scanned page with its records parsed (into `shape` when they fit)."""
    if page.parsed:
        return page
    fitted = _into_shape(page.texts or [], shape, page.content) if shape is not None else None
    texts: list[Any] | None
    if fitted is not None:
        records, texts = fitted
        strict, used = True, shape
    else:
        _, records, texts, strict, used = read_page(page.content, records_path)
    return dataclasses.replace(
        page, records=records, texts=texts, strict=strict, shape=used, parsed=True, content=b""
    )


def body_keys(spec: PaginatorSpec) -> tuple[str, ...]:
    """The top-level body keys a paginator reads (its total, cursor or has-more path)."""
    paths = [
        getattr(spec, name, None)
        for name in ("total_path", "total_pages_path", "cursor_path", "has_more_path")
    ]
    return tuple(sorted({path.split(".")[0] for path in paths if path}))


def dig(value: Any, path: str | None) -> Any:
    """`dig({"a": {"b": 1}}, "a.b") == 1`; None when any step is missing."""
    if not path:
        return value
    for part in path.split("."):
        value = field_of(value, part)
        if value is None:
            return None
    return value


def first_request(
    spec: PaginatorSpec, url: str, params: dict[str, Any], page_size: int
) -> dict[str, Any]:
    params = dict(params)
    if isinstance(spec, OffsetPaginator):
        params[spec.offset_param] = 0
        params[spec.limit_param] = page_size
    elif isinstance(spec, PageNumberPaginator):
        params[spec.page_param] = spec.first_page
        params[spec.size_param] = page_size
    elif isinstance(spec, StartingAfterPaginator | LinkHeaderPaginator):
        params[spec.limit_param] = page_size
    elif isinstance(spec, BodyCursorPaginator):
        params.setdefault("limit", page_size)
    return {"url": url, "params": params}


def saved_request(request: dict[str, Any] | None, base_url: str) -> dict[str, Any] | None:
    """A request as the resume point keeps it: its URL as a path under the base URL, never
    the base URL itself, so a base URL corrected in the YAML or the connection is the one a
    resumed pass calls. A URL on another host (a Link header's) is kept whole."""
    if request is None:
        return None
    url = request["url"]
    if url.startswith(base_url) and url[len(base_url) : len(base_url) + 1] in ("", "/", "?"):
        return {"path": url[len(base_url) :], "params": request["params"]}
    return {"other_host_url": url, "params": request["params"]}


def resumed_request(
    saved: dict[str, Any], base_url: str, stream_url: str, spec: PaginatorSpec
) -> dict[str, Any]:
    """The request a saved resume point stands for, on today's base URL. A resume point saved
    before paths were kept holds a whole URL ("url"), whose host may be a wrong one since
    fixed: every paginator but link_header always asks `stream_url`; a Link's URL keeps its
    path and query on the configured host."""
    params = saved.get("params") or {}
    if "path" in saved:
        return {"url": base_url + saved["path"], "params": params}
    if "other_host_url" in saved:
        return {"url": saved["other_host_url"], "params": params}
    if not isinstance(spec, LinkHeaderPaginator):
        return {"url": stream_url, "params": params}
    old = urlsplit(saved["url"])
    here = urlsplit(base_url)
    return {
        "url": urlunsplit((here.scheme, here.netloc, old.path, old.query, "")),
        "params": params,
    }


def next_request(
    spec: PaginatorSpec,
    request: dict[str, Any],
    response: requests.Response,
    body: Any,
    records: list[Any],
) -> dict[str, Any] | None:
    """The request for the page after this one, or None when this was the last page."""
    params = dict(request["params"])
    if isinstance(spec, SinglePage):
        return None
    if isinstance(spec, LinkHeaderPaginator):
        link = response.links.get("next", {}).get("url")
        return {"url": link, "params": {}} if link else None
    if not records:
        return None
    if isinstance(spec, OffsetPaginator):
        offset = int(params.get(spec.offset_param, 0)) + len(records)
        total = dig(body, spec.total_path)
        if isinstance(total, int) and offset >= total:
            return None
        limit = params.get(spec.limit_param)
        if isinstance(limit, int) and len(records) < limit and total is None:
            return None
        params[spec.offset_param] = offset
        return {"url": request["url"], "params": params}
    if isinstance(spec, PageNumberPaginator):
        page = int(params.get(spec.page_param, spec.first_page))
        pages = dig(body, spec.total_pages_path)
        if isinstance(pages, int) and page >= pages - (1 - spec.first_page):
            return None
        size = params.get(spec.size_param)
        if isinstance(size, int) and len(records) < size and pages is None:
            return None
        params[spec.page_param] = page + 1
        return {"url": request["url"], "params": params}
    if isinstance(spec, BodyCursorPaginator):
        cursor = dig(body, spec.cursor_path)
        if cursor in (None, ""):
            return None
        params[spec.cursor_param] = cursor
        return {"url": request["url"], "params": params}
    # starting_after: continue after the last record that still carries its id
    if not dig(body, spec.has_more_path):
        return None
    for record in reversed(records):
        last_id = field_of(record, spec.id_field)
        if last_id not in (None, ""):
            params[spec.param] = last_id
            return {"url": request["url"], "params": params}
    return None


def parse_page(  # type: ignore[no-untyped-def]
    records_path: str | None,
    total_path: str | None,
    shape_of: Callable[[], Shape | None] | None = None,
    keys: tuple[str, ...] = (),
    scan_only: bool = False,
):
    """A check for Client.get: the body as JSON, its records (and their served text), its
    total, or ValueError. `shape_of` gives the shape to try first (see read_page);
    `scan_only` leaves the records raw (see scan_page)."""

    def check(
        response: requests.Response,
    ) -> tuple[Any, list[Any], int | None, list[Any] | None, bool, Shape | None, bool]:
        if scan_only:
            body, records, texts, strict, parsed = scan_page(response.content, records_path, keys)
            used = None
        else:
            shape = shape_of() if shape_of is not None else None
            body, records, texts, strict, used = read_page(
                response.content, records_path, shape, keys
            )
            parsed = True
        total = dig(body, total_path) if total_path else None
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        return body, records, total, texts, strict, used, parsed

    return check


def pages(
    client: Client,
    spec: PaginatorSpec,
    request: dict[str, Any],
    records_path: str | None,
    shape_of: Callable[[], Shape | None] | None = None,
    scan_only: bool = False,
) -> Iterator[Page]:
    """Fetch pages starting at `request` until the paginator says there is no next one.

    `shape_of`, if given, is asked for the record shape to decode each page into (the
    loader passes its schema observer's latest); pages then hold shaped records. With
    `scan_only` the records stay raw, for the consumer to parse (parsed_page) while the next
    page is fetched."""
    total_path = spec.total_path if isinstance(spec, OffsetPaginator) else None
    check = parse_page(records_path, total_path, shape_of, body_keys(spec), scan_only)
    current: dict[str, Any] | None = request
    while current is not None:
        try:
            response, (body, records, total, texts, strict, shape, parsed) = client.get(
                current["url"], current["params"] or None, check
            )
        except RecordsNotFound as exc:
            exc.url = current["url"]
            exc.args = (exc.explain(),)
            raise
        following = next_request(spec, current, response, body, records)
        yield Page(
            request=current,
            url=response.url,
            records=records,
            next_request=following,
            bytes=len(response.content),
            api_total=total,
            fetched_at=time.time(),
            strict=strict,
            texts=texts,
            shape=shape,
            parsed=parsed,
            content=b"" if parsed else response.content,
        )
        current = following
