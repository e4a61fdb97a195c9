"""When a request to a source or target is tried again, and how long to wait first: the one rule
extract and reverse ETL share, run by tenacity.

Rate-limited answers (429) and other failures are counted apart: a source that says "slow
down" is waited on far longer (`max(20, 4 x max_retries)` answers) than one that is failing
(`max_retries`). A Retry-After is honoured as given; otherwise full jitter, capped. It must
never retry forever, and never retry what was not marked retryable.

tenacity runs the loop although it costs more CPU than the hand-written loops it replaced:
`bench/http_retry.py` on 2 busy cores (load average 7.7) measured 126 µs per successful call
against 1.4 µs, which was 7.5% of a 1.66 ms loopback GET of a 100-record page (1.4% in a run
where that GET took 8.9 ms) and 0.5% of a 25 ms request to a remote API; extract's
fetch thread also overlaps the load. Ours are only the jittered backoff and the Retry-After
reading: tenacity's jitter draws from the global `random` and counts every attempt, where
ours is seeded per client and counts rate limits and failures apart.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import tenacity


class Retryable(Exception):
    """One attempt failed in a way that may succeed if tried again; `what` names it."""

    def __init__(
        self,
        what: str,
        *,
        status: int | None = None,
        limited: bool = False,
        delay: float | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.status = status
        self.limited = limited  # a 429: counted against the rate-limit allowance
        self.delay = delay  # the answer's Retry-After, in seconds
        self.body = body


@dataclass
class Tries:
    """The failures of one call so far, rate-limited answers apart from the rest."""

    failed: int = 0
    throttled: int = 0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform between 0 and min(cap, base * 2**attempt)."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def rate_limit_allowance(max_retries: int) -> int:
    """How many 429 answers one call waits out before it gives up."""
    return max(20, max_retries * 4)


def retrying(
    *,
    max_retries: int,
    backoff_base_s: float,
    backoff_max_s: float,
    rng: random.Random,
    sleep: Callable[[float], None],
    give_up: Callable[[Retryable, Tries], NoReturn],
    throttled_wait: Callable[[Tries], float] | None = None,
    before_sleep: Callable[[], None] | None = None,
) -> tenacity.Retrying:
    """A tenacity controller for one call: retries `Retryable` only, re-raises anything else.

    Waits the answer's Retry-After, else full jitter on the count of failures of the same
    kind (or `throttled_wait` for a 429 without Retry-After). When a kind's allowance is spent
    it calls `give_up` with the last failure, which raises the caller's own error.
    """
    tries = Tries()

    def failure(state: tenacity.RetryCallState) -> Retryable:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert isinstance(error, Retryable)
        return error

    def count(state: tenacity.RetryCallState) -> None:
        if failure(state).limited:
            tries.throttled += 1
        else:
            tries.failed += 1

    def stop(state: tenacity.RetryCallState) -> bool:
        if failure(state).limited:
            return tries.throttled > rate_limit_allowance(max_retries)
        return tries.failed > max_retries

    def wait(state: tenacity.RetryCallState) -> float:
        error = failure(state)
        if error.delay is not None:
            return error.delay
        if error.limited and throttled_wait is not None:
            return throttled_wait(tries)
        attempt = tries.throttled if error.limited else tries.failed
        return backoff_delay(attempt - 1, backoff_base_s, backoff_max_s, rng)

    def last(state: tenacity.RetryCallState) -> Any:
        give_up(failure(state), tries)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        after=count,
        wait=wait,
        stop=stop,
        sleep=lambda seconds: sleep(float(seconds)),
        before_sleep=(lambda _state: before_sleep()) if before_sleep else None,
        retry_error_callback=last,
    )
