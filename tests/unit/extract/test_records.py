"""Keys, canonical JSON, hashes, cursor times and incremental parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tieout.extract.records import (
    Malformed,
    copy_text,
    cursor_param,
    cursor_time,
    encode,
    primary_key,
)

BERLIN = ZoneInfo("Europe/Berlin")


def test_primary_key() -> None:
    assert primary_key({"id": 7}, ["id"]) == "7"
    assert primary_key({"a": "x", "b": 2}, ["a", "b"]) == "x|2"
    for bad in ({}, {"id": None}, {"id": ""}, {"id": {"x": 1}}, {"id": True}):
        with pytest.raises(Malformed, match="primary key field 'id'"):
            primary_key(bad, ["id"])
    with pytest.raises(Malformed, match="record is a JSON list"):
        primary_key([1], ["id"])


def test_encode_is_canonical() -> None:
    a, ha = encode({"b": 1, "a": {"y": 2, "x": "é"}})
    b, hb = encode({"a": {"x": "é", "y": 2}, "b": 1})
    assert a == b == '{"a":{"x":"\\u00e9","y":2},"b":1}' and ha == hb
    with pytest.raises(Malformed, match="NUL"):
        encode({"a": "x\x00y"})


def test_copy_text() -> None:
    assert copy_text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05.123Z", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2026-01-02 04:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # Berlin local
        ("2026-01-01T22:04:05-05:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1767323045, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1767323045000, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1767323045", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
        (True, None),
    ],
)
def test_cursor_time(value: object, expected: datetime | None) -> None:
    assert cursor_time(value, BERLIN) == expected


def test_cursor_param_formats() -> None:
    stored = "2026-01-02T03:14:05.123000+00:00"
    assert cursor_param(stored, 600, "iso", ZoneInfo("UTC")) == "2026-01-02T03:04:05.123Z"
    assert cursor_param(stored, 600, "iso", BERLIN) == "2026-01-02T04:04:05.123+01:00"
    assert cursor_param(stored, 600, "epoch", BERLIN) == "1767323045"
    assert cursor_param(stored, 0, "date", BERLIN) == "2026-01-02"
