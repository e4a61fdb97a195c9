"""Turn API records into the parts of a raw row: key, JSON text and cursor time, or the reason
a record cannot be loaded.

Pure functions on the hot path; they must never touch the network or the database.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Canonical JSON (keys sorted at every level, compact, UTF-8), for records that were parsed
# leniently and so have no served text that jsonb would take.
_canonical = msgspec.json.Encoder(order="sorted")
NUL = b"\\u0000"
EPOCH_MS = 100_000_000_000  # a larger epoch number counts milliseconds


class Malformed(ValueError):
    """A record that cannot be loaded; the message is the quarantine reason."""


def field_of(value: Any, name: str) -> Any:
    """A field of a decoded JSON object, a dict or a shaped record; None when absent."""
    if type(value) is msgspec.Raw:
        value = msgspec.json.decode(value)  # a record not parsed yet (paging reads one or two)
    if type(value) is dict:
        return value.get(name)
    if isinstance(value, msgspec.Struct):
        return getattr(value, name, None)
    return None


def primary_key(record: Any, fields: list[str]) -> str:
    """The key as text (fields joined with '|'); raises Malformed when a part is missing."""
    if not isinstance(record, dict | msgspec.Struct):
        raise Malformed(f"record is a JSON {type(record).__name__}, expected an object")
    parts = []
    for name in fields:
        value = field_of(record, name)
        if value is None or value == "" or isinstance(value, dict | list | bool | msgspec.Struct):
            raise Malformed(f"primary key field {name!r} is missing or not a scalar")
        parts.append(str(value))
    return parts[0] if len(parts) == 1 else "|".join(parts)


def record_lines(page: Any) -> list[Any]:
    """Each record's JSON text for raw (bytes-like), or the Malformed reason it cannot be
    stored: the text as served after a strict parse, else a checked canonical encoding."""
    if page.texts is None:
        return encode_page(page.records)
    return page.texts


def served_checked(records: list[Any], texts: list[Any]) -> list[Any]:
    """Served texts with a Malformed in place of each record holding a NUL character (only
    worth calling when the body contains an escaped NUL at all)."""
    return [_nul_checked(record, bytes(text)) for record, text in zip(records, texts, strict=True)]


def encode_page(records: list[Any]) -> list[bytes | Malformed]:
    """Each leniently parsed record's canonical JSON, or the reason jsonb cannot store it."""
    return [_nul_checked(record, _encode_checked(record)) for record in records]


def encode(record: Any) -> bytes:
    """One record's canonical JSON; raises Malformed on what PostgreSQL jsonb refuses."""
    line = _nul_checked(record, _encode_checked(record))
    if isinstance(line, Malformed):
        raise line
    return line


def _encode_checked(record: Any) -> bytes | Malformed:
    bad = _not_json(record)
    if bad is not None:
        return Malformed(bad)
    try:
        return _canonical.encode(record)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        return Malformed(f"record cannot be encoded as JSON: {exc}")


def _nul_checked(record: Any, line: bytes | Malformed) -> bytes | Malformed:
    if type(line) is bytes and NUL in line and any("\x00" in text for text in _strings(record)):
        return Malformed("record contains a NUL character, which PostgreSQL jsonb cannot store")
    return line


def _not_json(value: Any) -> str | None:
    """Why a leniently parsed value is not storable JSON (NaN, Infinity, lone surrogates)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"record contains {value!r}, which is not JSON"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "record contains an invalid Unicode surrogate, which jsonb cannot store"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _not_json(key) or _not_json(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _not_json(item)
            if found:
                return found
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format."""
    return value.translate(COPY_ESCAPE)


def cursor_time(value: Any, zone: ZoneInfo) -> datetime | None:
    """A cursor value (ISO text, 'YYYY-MM-DD HH:MM:SS' local, epoch s or ms) as aware UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > EPOCH_MS else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return cursor_time(int(value), zone)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def latest_time(values: list[Any], zone: ZoneInfo) -> datetime | None:
    """The latest of a page's cursor values as an aware time (None if none reads as a time).

    ISO texts of one width, one date-time separator and one offset sort as they read, and epoch
    numbers sort as numbers, so then only the largest is parsed. Texts in a few offsets (local
    times across a daylight-saving change) are grouped by offset and each group's largest
    parsed. Anything else is parsed value by value (0.7 us a value).
    """
    if not values:
        return None
    kinds = set(map(type, values))
    if kinds == {str} and len(set(map(len, values))) == 1:
        groups = _same_offset_groups(values)
        if groups is not None and len(set(map(_SEPARATOR, values))) == 1:
            found = [cursor_time(max(group), zone) for group in groups]
            if None not in found:
                return max(found)  # type: ignore[type-var]
    elif kinds <= {int, float} and (max(values) < EPOCH_MS or min(values) > EPOCH_MS):
        return cursor_time(max(values), zone)  # all seconds or all milliseconds
    latest = None
    for value in values:
        moment = cursor_time(value, zone)
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def _same_offset_groups(values: list[str]) -> list[list[str]] | None:
    """Texts of one width split by their offset (last six characters; all 'Z' is one), or None
    when there are too many offsets for grouping to pay."""
    offsets = set(map(_OFFSET, values))
    if len(offsets) == 1 or set(map(_LAST, values)) == {"Z"}:
        return [values]
    if len(offsets) > 4:
        return None
    return [[value for value in values if value[-6:] == offset] for offset in offsets]


_OFFSET = operator.itemgetter(slice(-6, None))
_LAST = operator.itemgetter(-1)
_SEPARATOR = operator.itemgetter(slice(10, 11))


def cursor_param(stored: str, lookback_s: int, fmt: str, zone: ZoneInfo) -> str:
    """The value of the incremental parameter: the stored cursor minus the lookback window."""
    moment = datetime.fromisoformat(stored) - timedelta(seconds=lookback_s)
    if fmt == "epoch":
        return str(int(moment.timestamp()))
    local = moment.astimezone(zone)
    if fmt == "date":
        return local.date().isoformat()
    if local.utcoffset() == timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}Z"
    return local.isoformat(timespec="milliseconds")
