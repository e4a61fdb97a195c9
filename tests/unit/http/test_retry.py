"""The retry rule on its own: what is retried, how often of each kind, how long it waits, and
the caller's error when the allowance is spent."""

from __future__ import annotations

import random
from typing import NoReturn

import pytest

from tieout.http.retry import Retryable, Tries, rate_limit_allowance, retrying


class GaveUp(Exception):
    pass


def run(
    failures: list[Retryable], max_retries: int = 3, cap: float = 4.0
) -> tuple[list[float], Tries | None, int]:
    """Feed `failures` to a controller, then succeed; (sleeps, tries at give-up, calls)."""
    sleeps: list[float] = []
    calls = [0]
    seen: list[Tries] = []

    def give_up(last: Retryable, tries: Tries) -> NoReturn:
        seen.append(tries)
        raise GaveUp(f"{last.what} after {tries.failed} failures, {tries.throttled} throttled")

    def call() -> str:
        calls[0] += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    controller = retrying(
        max_retries=max_retries,
        backoff_base_s=0.5,
        backoff_max_s=cap,
        rng=random.Random(3),
        sleep=sleeps.append,
        give_up=give_up,
    )
    try:
        assert controller(call) == "ok"
    except GaveUp:
        return sleeps, seen[0], calls[0]
    return sleeps, None, calls[0]


def test_failures_are_retried_max_retries_times_then_given_up() -> None:
    sleeps, tries, calls = run([Retryable("HTTP 503") for _ in range(10)], max_retries=3)
    assert tries is not None and tries.failed == 4 and tries.throttled == 0
    assert calls == 4 and len(sleeps) == 3


def test_backoff_is_bounded_by_the_cap_and_grows_up_to_it() -> None:
    sleeps, tries, _ = run([Retryable("timeout") for _ in range(40)], max_retries=40, cap=2.0)
    assert tries is None and len(sleeps) == 40  # 40 retries allowed: the 41st call succeeds
    assert all(0 <= s <= 2.0 for s in sleeps)
    assert sleeps[0] <= 0.5 and sleeps[1] <= 1.0  # base * 2**attempt before the cap
    assert max(sleeps[5:]) > 1.0  # later waits reach towards the cap


def test_retry_after_is_waited_as_given() -> None:
    sleeps, tries, _ = run([Retryable("HTTP 429", limited=True, delay=7.5)] * 2)
    assert tries is None and sleeps == [7.5, 7.5]


def test_rate_limits_have_their_own_larger_allowance() -> None:
    allowance = rate_limit_allowance(3)
    assert allowance == 20 and rate_limit_allowance(10) == 40
    limited = [Retryable("HTTP 429", limited=True, delay=0.0) for _ in range(allowance)]
    sleeps, tries, _ = run(limited + [Retryable("HTTP 503")] * 3, max_retries=3)
    assert tries is None and len(sleeps) == allowance + 3  # 20 throttled + 3 failures, then ok
    sleeps, tries, calls = run(
        [Retryable("HTTP 429", limited=True, delay=0.0) for _ in range(allowance + 1)]
    )
    assert tries is not None and tries.throttled == allowance + 1 and calls == allowance + 1


def test_other_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []

    def call() -> None:
        raise KeyError("not retryable")

    def give_up(last: Retryable, tries: Tries) -> NoReturn:
        raise AssertionError("never reached")

    controller = retrying(
        max_retries=5,
        backoff_base_s=0.5,
        backoff_max_s=4.0,
        rng=random.Random(0),
        sleep=sleeps.append,
        give_up=give_up,
    )
    with pytest.raises(KeyError):
        controller(call)
    assert sleeps == []
