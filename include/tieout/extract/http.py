"""One HTTP client per stream run: timeouts, retries with backoff and jitter, Retry-After,
a request budget shared by every task of a source, and a circuit breaker.

It only issues GET requests to the source; it must never retry forever or print credentials.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg
import requests
from requests.auth import AuthBase

from tieout.extract.connections import redact
from tieout.extract.measure import MeasuredAdapter, RequestLog

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class CircuitOpen(RuntimeError):
    """Too many consecutive failures: the stream stops with the last failure named."""


class RequestFailed(RuntimeError):
    """A request failed and will not be retried (a 4xx other than 429, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RequestBudget(Protocol):
    def acquire(self) -> None: ...

    def penalize(self, seconds: float) -> None: ...


class LocalBudget:
    """A token bucket for one process: `rate` requests per second, bursts up to `capacity`."""

    def __init__(self, rate: float, capacity: float, sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.refreshed = time.monotonic()
        self.sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.refreshed) * self.rate) - 1
            self.refreshed = now
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            self.tokens = min(self.tokens, -seconds * self.rate)


class PostgresBudget:
    """The token bucket of one source kept in ops.request_budget, shared by every process.

    Tokens are reserved with one atomic UPDATE, a lease of several at a time (at most a tenth
    of a second's worth, never more than a quarter of the burst), so a fast stream does not
    pay a database round trip per request. A negative balance is a debt the caller sleeps
    off, so concurrent tasks queue fairly without polling. Tokens are taken before they are
    spent, so the source's rate is never exceeded; at most one lease is left unspent.
    """

    SQL = """
        insert into ops.request_budget as b (source, tokens, capacity, rate, refreshed_at)
        values (%(source)s, %(capacity)s - %(lease)s, %(capacity)s, %(rate)s, clock_timestamp())
        on conflict (source) do update set
            tokens = least(excluded.capacity,
                           b.tokens + extract(epoch from clock_timestamp() - b.refreshed_at)
                                      * excluded.rate) - %(lease)s,
            capacity = excluded.capacity,
            rate = excluded.rate,
            refreshed_at = clock_timestamp()
        returning tokens
    """

    def __init__(self, conn: psycopg.Connection[Any], source: str, rate: float, capacity: float):
        self.conn = conn
        self.source = source
        self.rate = rate
        self.capacity = capacity
        self.lease = max(1, min(int(capacity // 4), int(rate * 0.1)))
        self.leased = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self.leased > 0:
                self.leased -= 1
                return
            row = self.conn.execute(
                self.SQL,
                {
                    "source": self.source,
                    "capacity": self.capacity,
                    "rate": self.rate,
                    "lease": self.lease,
                },
            ).fetchone()
            self.leased = self.lease - 1
        tokens = float(row[0]) if row else 0.0
        if tokens < 0:
            time.sleep(-tokens / self.rate)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            self.leased = 0  # what this process holds is void: the source asked for a pause
            self.conn.execute(
                """update ops.request_budget
                   set tokens = least(tokens, -%s * rate) where source = %s""",
                (seconds, self.source),
            )


@dataclass
class Counters:
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    bytes: int = 0


@dataclass
class Settings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    circuit_breaker_failures: int = 10
    secrets: list[str] = field(default_factory=list)


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


class Client:
    """GET with retries for one stream; not shared between streams (counters are per stream)."""

    def __init__(
        self,
        auth: AuthBase,
        settings: Settings,
        budget: RequestBudget,
        label: str,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        self.session = requests.Session()
        self.request_log = RequestLog()
        adapter = MeasuredAdapter(
            self.request_log, pool_connections=2, pool_maxsize=4, max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = auth
        # Proxies, CA bundle and client cert from the environment (HTTPS_PROXY, NO_PROXY,
        # REQUESTS_CA_BUNDLE, ...) are read once per host instead of on every request, which
        # cost a quarter of the client's time per page.
        self.session.trust_env = False
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        self.auth = auth
        self.settings = settings
        self.budget = budget
        self.label = label
        self.sleep = self.request_log.sleeper(sleep)
        self.rng = random.Random(seed)
        self.counters = Counters()
        self.consecutive_failures = 0

    def close(self) -> None:
        self.session.close()

    def _settings_for(self, url: str) -> dict[str, Any]:
        """requests' environment settings for this URL's host, looked up once."""
        host = urlsplit(url)[:2]
        found = self._environment.get(host)
        if found is None:
            probe = requests.Session()  # trusts the environment, as requests does by default
            found = dict(probe.merge_environment_settings(url, {}, None, None, None))
            probe.close()
            self._environment[host] = found
        return found

    def _failed(self, what: str) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.settings.circuit_breaker_failures:
            raise CircuitOpen(
                f"{self.label}: stopped after {self.consecutive_failures} consecutive failed "
                f"requests; last: {self._redact(what)}"
            )

    def _redact(self, text: str) -> str:
        return redact(text, self.settings.secrets)

    def get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        check: Callable[[requests.Response], Any] | None = None,
    ) -> tuple[requests.Response, Any]:
        """GET `url`; retry on connection errors, timeouts, 5xx, 429 and when `check` raises
        ValueError (e.g. a truncated JSON body). Returns the response and check's result."""
        attempt = 0
        throttled = 0
        reauthenticated = False
        settings = self.settings
        unreadable: str | None = None
        while True:
            self.budget.acquire()
            self.counters.requests += 1
            delay: float | None = None
            limited = False
            try:
                response = self.session.get(
                    url,
                    params=params,
                    timeout=(settings.connect_timeout_s, settings.read_timeout_s),
                    **self._settings_for(url),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                what = f"{type(exc).__name__} on GET {url}"
            else:
                self.counters.bytes += len(response.content)
                status = response.status_code
                if status == 429:
                    self.counters.http_429 += 1
                    limited = True
                    delay = retry_after_seconds(response.headers.get("Retry-After"))
                    what = f"HTTP 429 on GET {response.url}"
                    if delay is not None:
                        self.budget.penalize(delay)
                elif status in RETRYABLE_STATUS:
                    what = f"HTTP {status} on GET {response.url}"
                elif status == 401 and hasattr(self.auth, "invalidate") and not reauthenticated:
                    self.auth.invalidate()
                    reauthenticated = True
                    continue
                elif status >= 400:
                    raise RequestFailed(
                        self._redact(
                            f"{self.label}: HTTP {status} on GET {response.url}: "
                            f"{response.text[:300]}"
                        ),
                        status,
                    )
                else:
                    try:
                        result = check(response) if check else None
                    except ValueError as exc:
                        what = f"unreadable body from GET {response.url}: {exc}"
                        unreadable = response.text
                    else:
                        self.consecutive_failures = 0
                        return response, result
            if limited:
                throttled += 1
                if throttled > max(20, settings.max_retries * 4):
                    raise RequestFailed(
                        f"{self.label}: still rate limited after {throttled} attempts on GET {url}",
                        429,
                    )
            else:
                self._failed(what)
                if attempt >= settings.max_retries:
                    raise RequestFailed(
                        self._redact(
                            f"{self.label}: gave up after {attempt + 1} attempts; last: {what}"
                        ),
                        body=unreadable if what.startswith("unreadable") else None,
                    )
                attempt += 1
            if delay is None:
                delay = backoff_delay(
                    (throttled if limited else attempt) - 1,
                    settings.backoff_base_s,
                    settings.backoff_max_s,
                    self.rng,
                )
            self.counters.retries += 1
            self.sleep(delay)
