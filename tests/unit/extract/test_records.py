"""Keys, canonical JSON, hashes, cursor times and incremental parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tieout.extract.records import (
    Malformed,
    copy_text,
    cursor_param,
    cursor_time,
    encode,
    encode_page,
    latest_time,
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
    a = encode({"b": 1, "a": {"y": 2, "x": "é"}})
    b = encode({"a": {"x": "é", "y": 2}, "b": 1})
    assert a == b == '{"a":{"x":"é","y":2},"b":1}'.encode()
    with pytest.raises(Malformed, match="NUL"):
        encode({"a": "x\x00y"})
    with pytest.raises(Malformed, match="not JSON"):
        encode({"a": float("nan")})
    with pytest.raises(Malformed, match="surrogate"):
        encode({"a": "\ud800"})


def test_encode_page_matches_one_by_one() -> None:
    records = [{"id": 2, "b": [1, {"z": None, "y": 1.5}]}, "text", 7, {"id": 1, "s": "a\nb\\"}]
    lines = encode_page(records)
    assert lines == [encode(r) for r in records]
    assert all(b"\n" not in line for line in lines if isinstance(line, bytes))


def test_encode_page_names_the_bad_records_only() -> None:
    records = [{"id": 1, "a": "nul\x00"}, {"id": 2, "a": "\\u0000 is text"}, {"id": 3}]
    lines = encode_page(records)
    assert isinstance(lines[0], Malformed) and "NUL" in str(lines[0])
    assert lines[1] == encode(records[1]) and lines[2] == b'{"id":3}'
    lenient = encode_page([{"id": 1, "x": float("inf")}, {"id": 2}])
    assert isinstance(lenient[0], Malformed) and "inf" in str(lenient[0])
    assert lenient[1] == b'{"id":2}'


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


def _latest_by_parsing(values: list[object], zone: ZoneInfo) -> datetime | None:
    moments = [m for m in (cursor_time(v, zone) for v in values) if m is not None]
    return max(moments) if moments else None


@pytest.mark.parametrize(
    "values",
    [
        ["2026-01-02T03:04:05-05:00", "2026-01-02T09:04:05-05:00", "2026-01-01T23:59:59-05:00"],
        ["2026-01-02T03:04:05.120Z", "2026-01-02T03:04:05.999Z", "2026-01-02T03:04:06.000Z"],
        ["2026-01-02T08:00:00-05:00", "2026-01-02T12:00:00+00:00"],  # offsets differ
        [  # local times across a DST change: the largest text is not the latest time
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:10:00-05:00",
            "2024-11-03T00:50:00-04:00",
            "2024-11-03T01:20:00-05:00",
        ],
        ["2026-01-02T03:04:05+01:00", "zzzz-zz-zzTzz:zz:zz+02:00"],  # a group's largest: no time
        ["2026-01-02 04:04:05", "2026-01-02 23:00:00", "2026-03-29 02:30:00"],  # local, DST gap
        ["2026-01-02T03:04:05Z", "not a time at all!!!", "2026-01-02T03:04:04Z"],
        ["zzzz-zz-zzTzz:zz:zzZ", "2026-01-02T03:04:04Z"],  # the largest text is no time
        [1767323045, 1767323046000, 1767323044.5],
        [1767323047, 1767323046000],  # seconds and milliseconds mixed
        ["1767323045", "1767323049"],
        [],
    ],
)
def test_latest_time_agrees_with_parsing_each(values: list[object]) -> None:
    assert latest_time(values, BERLIN) == _latest_by_parsing(values, BERLIN)


@given(
    st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2099, 12, 31),  # noqa: DTZ001
            ),
            st.sampled_from([-5, -4, 0, 1, 2, 5]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_latest_time_of_local_texts_in_a_few_offsets(moments: list[tuple[datetime, int]]) -> None:
    values = [
        naive.replace(microsecond=0, tzinfo=timezone(timedelta(hours=hours))).isoformat()
        for naive, hours in moments
    ]
    assert latest_time(values, BERLIN) == _latest_by_parsing(values, BERLIN)
