"""Turn one API record into the parts of a raw row: key, canonical JSON, hash and cursor time,
or the reason it cannot be loaded.

Pure functions on the hot path; they must never touch the network or the database.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
_md5 = hashlib.md5


class Malformed(ValueError):
    """A record that cannot be loaded; the message is the quarantine reason."""


def primary_key(record: Any, fields: list[str]) -> str:
    """The key as text (fields joined with '|'); raises Malformed when a part is missing."""
    if not isinstance(record, dict):
        raise Malformed(f"record is a JSON {type(record).__name__}, expected an object")
    if len(fields) == 1:
        value = record.get(fields[0])
        if value is None or value == "" or isinstance(value, dict | list | bool):
            raise Malformed(f"primary key field {fields[0]!r} is missing or not a scalar")
        return str(value)
    parts = []
    for name in fields:
        value = record.get(name)
        if value is None or value == "" or isinstance(value, dict | list | bool):
            raise Malformed(f"primary key field {name!r} is missing or not a scalar")
        parts.append(str(value))
    return "|".join(parts)


def encode(record: dict[str, Any]) -> tuple[str, str]:
    """Canonical JSON (sorted keys, compact) and its md5; raises Malformed on what jsonb refuses."""
    text = _dumps(record)
    if "\\u0000" in text:
        raise Malformed("record contains a NUL character, which PostgreSQL jsonb cannot store")
    return text, _md5(text.encode()).hexdigest()


def served(text: str) -> tuple[str, str]:
    """A record's JSON as the API served it: COPY-escaped text and its md5."""
    if "\\u0000" in text:
        raise Malformed("record contains a NUL character, which PostgreSQL jsonb cannot store")
    digest = _md5(text.encode()).hexdigest()
    if "\n" in text or "\t" in text or "\r" in text:
        return text.translate(COPY_ESCAPE), digest
    return text.replace("\\", "\\\\"), digest


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format."""
    return value.translate(COPY_ESCAPE)


def cursor_time(value: Any, zone: ZoneInfo) -> datetime | None:
    """A cursor value (ISO text, 'YYYY-MM-DD HH:MM:SS' local, epoch s or ms) as aware UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 100_000_000_000 else value
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
