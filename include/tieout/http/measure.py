"""What one stream's HTTP client saw, request by request: latency, errors by class, 429 waits.

Kept in memory beside the client (a float append per request) and summed once at the end of a
run; it must never slow the extract hot path or hold anything a request carried (no URLs, bodies).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter


@dataclass
class RequestLog:
    """Per-request figures of one client. Appended from one thread at a time (the fetcher)."""

    latencies_s: list[float] = field(default_factory=list)
    errors_4xx: int = 0
    errors_5xx: int = 0
    errors_timeout: int = 0
    errors_connection: int = 0
    http_429: int = 0
    wait_429_s: float = 0.0
    last_429: bool = False

    def record(self, seconds: float, status: int | None, error: BaseException | None) -> None:
        self.latencies_s.append(seconds)
        self.last_429 = status == 429
        if error is not None:
            # a connect timeout is both a Timeout and a ConnectionError: it counts as a timeout
            if isinstance(error, requests.Timeout):
                self.errors_timeout += 1
            else:
                self.errors_connection += 1
        elif status is None:
            return
        elif status == 429:
            self.http_429 += 1
        elif status >= 500:
            self.errors_5xx += 1
        elif status >= 400:
            self.errors_4xx += 1

    def sleeper(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """`sleep`, timed: a sleep right after a 429 answer is time spent waiting on the limit."""

        def timed(seconds: float) -> None:
            if not self.last_429:
                sleep(seconds)
                return
            started = time.monotonic()
            try:
                sleep(seconds)
            finally:
                self.wait_429_s += time.monotonic() - started

        return timed

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def errors(self) -> int:
        return self.errors_4xx + self.errors_5xx + self.errors_timeout + self.errors_connection

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "requests": len(ordered),
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "errors_timeout": self.errors_timeout,
            "errors_connection": self.errors_connection,
            "http_429": self.http_429,
            "wait_429_s": round(self.wait_429_s, 3),
            "latency_p50_ms": _ms(percentile(ordered, 50)),
            "latency_p95_ms": _ms(percentile(ordered, 95)),
            "latency_p99_ms": _ms(percentile(ordered, 99)),
        }


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest rank: the smallest value with at least `pct`% of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class MeasuredAdapter(HTTPAdapter):
    """requests' adapter that logs each request's latency (to the last byte of the body) and
    outcome; retries are off, so one send is one request on the wire."""

    def __init__(self, log: RequestLog, **kwargs: Any) -> None:
        self.request_log = log
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        started = time.perf_counter()
        try:
            response = super().send(request, **kwargs)
            if not kwargs.get("stream"):
                response.content  # noqa: B018 - the body belongs to the request's latency
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.request_log.record(time.perf_counter() - started, None, exc)
            raise
        self.request_log.record(time.perf_counter() - started, response.status_code, None)
        return response
