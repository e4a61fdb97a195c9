"""Without an Idempotency-Key, send_one starts over from the read only after a write the
target did not refuse (a 5xx or no answer); a failed read or a refused write is final."""

from __future__ import annotations

import pytest

from tieout.http.client import RequestFailed
from tieout.reverse_etl.send import unacknowledged


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (RequestFailed("HTTP 503 on PUT", 503, method="PUT"), True),
        (RequestFailed("ConnectionError on PATCH", None, method="PATCH"), True),
        (RequestFailed("HTTP 422", 422, method="PUT"), False),
        (RequestFailed("still rate limited", 429, method="PUT"), False),
        (
            RequestFailed("gave up after 6 attempts; last: HTTP 503 on GET", None, method="GET"),
            False,
        ),
        (RequestFailed("HTTP 500: oops", 500), False),  # raised by send_one itself
        (ValueError("bad body"), False),
    ],
)
def test_what_is_tried_again(error: BaseException, again: bool) -> None:
    assert unacknowledged(error) is again
