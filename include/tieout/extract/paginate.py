"""Page through one stream: each paginator kind turns a page into the request for the next one.

A request is plain JSON (url + params) so it can be saved as the resume point; this module
must never keep more than the page in hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from tieout.config import (
    BodyCursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePage,
    StartingAfterPaginator,
)
from tieout.extract.http import Client

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
    texts: list[str] | None = None  # each record's JSON exactly as served, when known


_decoder = json.JSONDecoder()
_scan = _decoder.scan_once  # type: ignore[attr-defined]
_WS = " \t\n\r"


def _skip(text: str, i: int) -> int:
    while text[i] in _WS:
        i += 1
    return i


def split_records(text: str, key: str | None) -> tuple[Any, list[Any], list[str]]:
    """Parse a page and keep each record's own JSON text (no re-encoding needed to hash it).

    Handles a top-level array or a top-level object whose `key` holds the array; raises
    ValueError on anything else (the caller then falls back to a plain parse).
    """
    records: list[Any] = []
    texts: list[str] = []

    def array(i: int) -> int:
        i = _skip(text, i)
        if text[i] != "[":
            raise ValueError("records are not an array")
        i = _skip(text, i + 1)
        if text[i] == "]":
            return i + 1
        while True:
            value, end = _scan(text, i)
            records.append(value)
            texts.append(text[i:end])
            i = _skip(text, end)
            if text[i] == "]":
                return i + 1
            if text[i] != ",":
                raise ValueError("expected ',' between records")
            i = _skip(text, i + 1)

    try:
        i = _skip(text, 0)
        if key is None:
            end = array(i)
            if text[end:].strip():
                raise ValueError("trailing data")
            return records, records, texts
        if text[i] != "{":
            raise ValueError("expected an object")
        body: dict[str, Any] = {}
        i = _skip(text, i + 1)
        while text[i] != "}":
            name, i = _scan(text, i)
            i = _skip(text, i)
            if text[i] != ":":
                raise ValueError("expected ':'")
            i = _skip(text, i + 1)
            if name == key:
                i = array(i)
                body[name] = records
            else:
                body[name], i = _scan(text, i)
            i = _skip(text, i)
            if text[i] == ",":
                i = _skip(text, i + 1)
            elif text[i] != "}":
                raise ValueError("expected ',' or '}'")
        if text[i + 1 :].strip():
            raise ValueError("trailing data")
    except (StopIteration, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid JSON ({type(exc).__name__} in page body)") from None
    if key not in body:
        raise ValueError(f"no record list at {key!r}")
    return body, records, texts


def dig(value: Any, path: str | None) -> Any:
    """`dig({"a": {"b": 1}}, "a.b") == 1`; None when any step is missing."""
    if not path:
        return value
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
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
        if isinstance(record, dict) and record.get(spec.id_field) not in (None, ""):
            params[spec.param] = record[spec.id_field]
            return {"url": request["url"], "params": params}
    return None


def parse_page(records_path: str | None, total_path: str | None):  # type: ignore[no-untyped-def]
    """A check for Client.get: the body as JSON and its record list, or ValueError."""

    simple = records_path is None or "." not in records_path

    def check(
        response: requests.Response,
    ) -> tuple[Any, list[Any], int | None, list[str] | None]:
        texts: list[str] | None = None
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("page body is not UTF-8") from None
        if simple:
            body, records, texts = split_records(text, records_path)
        else:
            try:
                body = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON ({exc.msg})") from None
            records = dig(body, records_path)
            if not isinstance(records, list):
                raise ValueError(f"no record list at {records_path!r}")
        total = dig(body, total_path) if total_path else None
        return body, records, total if isinstance(total, int) else None, texts

    return check


def pages(
    client: Client,
    spec: PaginatorSpec,
    request: dict[str, Any],
    records_path: str | None,
) -> Iterator[Page]:
    """Fetch pages starting at `request` until the paginator says there is no next one."""
    total_path = spec.total_path if isinstance(spec, OffsetPaginator) else None
    check = parse_page(records_path, total_path)
    current: dict[str, Any] | None = request
    while current is not None:
        response, (body, records, total, texts) = client.get(
            current["url"], current["params"] or None, check
        )
        following = next_request(spec, current, response, body, records)
        yield Page(
            request=current,
            url=response.url,
            records=records,
            next_request=following,
            bytes=len(response.content),
            api_total=total,
            fetched_at=time.time(),
            texts=texts,
        )
        current = following
