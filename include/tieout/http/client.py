"""The HTTP client extract and reverse ETL talk to source systems with: timeouts, retries (the
rule in `tieout.http.retry`), the source's request budget, one re-login on a 401, a circuit
breaker, and the request log behind integration health.

It must never retry forever, never resend a write that could apply twice, and never print
credentials: every message that names a URL or a body is redacted first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from tieout.config import Source
from tieout.http import auth as auth_module
from tieout.http.budget import RequestBudget
from tieout.http.connections import Connection, redact
from tieout.http.measure import MeasuredAdapter, RequestLog
from tieout.http.retry import Retryable, Tries, backoff_delay, retry_after_seconds, retrying

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
# a write's 429 without Retry-After: a fixed pause, the target applied nothing
WRITE_THROTTLE_WAIT_S = 1.0


class CircuitOpen(RuntimeError):
    """Too many consecutive failures: the stream stops with the last failure named."""


class RequestFailed(RuntimeError):
    """A request failed and will not be retried (a 4xx other than 429, or retries exhausted)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.method = method  # of the request that failed, when the client sent it


@dataclass
class Counters:
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    bytes: int = 0
    writes: int = 0


@dataclass
class Settings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    circuit_breaker_failures: int = 10
    secrets: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, source: Source, connection: Connection) -> Settings:
        """A source's timeouts, retries and breaker, and its connection's secrets to redact."""
        return cls(
            connect_timeout_s=source.connect_timeout_s,
            read_timeout_s=source.timeout_s,
            max_retries=source.max_retries,
            backoff_base_s=source.backoff_base_s,
            backoff_max_s=source.backoff_max_s,
            circuit_breaker_failures=source.circuit_breaker_failures,
            secrets=connection.secrets(),
        )


class Client:
    """One client per stream run (extract) or per target (reverse ETL); its counters, breaker
    and request log are that run's, so it is not shared."""

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

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request through the budget, sent once more after a 401 if the auth can log in
        again (an expired token); the re-sent request is not a retry. GETs count the bytes
        read, other methods count as writes."""
        reauthenticated = False
        timeout = (self.settings.connect_timeout_s, self.settings.read_timeout_s)
        while True:
            self.budget.acquire()
            self.counters.requests += 1
            if method != "GET":
                self.counters.writes += 1
            response = self.session.request(method, url, timeout=timeout, **kwargs)
            if method == "GET":
                self.counters.bytes += len(response.content)
            if (
                response.status_code == 401
                and hasattr(self.auth, "invalidate")
                and not reauthenticated
            ):
                self.auth.invalidate()
                reauthenticated = True
                continue
            return response

    def _throttled(self, response: requests.Response, what: str) -> Retryable:
        """A 429: counted, and its Retry-After paid by every request of the source."""
        self.counters.http_429 += 1
        delay = retry_after_seconds(response.headers.get("Retry-After"))
        if delay is not None:
            self.budget.penalize(delay)
        return Retryable(what, status=429, limited=True, delay=delay)

    def _count_retry(self) -> None:
        self.counters.retries += 1

    def get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        check: Callable[[requests.Response], Any] | None = None,
    ) -> tuple[requests.Response, Any]:
        """GET `url`; retry on connection errors, timeouts, 5xx, 429 and when `check` raises
        ValueError (e.g. a truncated JSON body). Returns the response and check's result."""

        def attempt() -> tuple[requests.Response, Any]:
            try:
                response = self._send("GET", url, params=params, **self._settings_for(url))
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = Retryable(f"{type(exc).__name__} on GET {url}")
            else:
                status = response.status_code
                if status == 429:
                    raise self._throttled(response, f"HTTP 429 on GET {response.url}")
                if status in RETRYABLE_STATUS:
                    failure = Retryable(f"HTTP {status} on GET {response.url}", status=status)
                elif status >= 400:
                    raise RequestFailed(
                        self._redact(
                            f"{self.label}: HTTP {status} on GET {response.url}: "
                            f"{response.text[:300]}"
                        ),
                        status,
                        method="GET",
                    )
                else:
                    try:
                        result = check(response) if check else None
                    except ValueError as exc:
                        failure = Retryable(
                            f"unreadable body from GET {response.url}: {exc}", body=response.text
                        )
                    else:
                        self.consecutive_failures = 0
                        return response, result
            self._failed(failure.what)
            raise failure

        def give_up(last: Retryable, tries: Tries) -> NoReturn:
            if last.limited:
                raise RequestFailed(
                    f"{self.label}: still rate limited after {tries.throttled} attempts "
                    f"on GET {url}",
                    429,
                    method="GET",
                )
            raise RequestFailed(
                self._redact(
                    f"{self.label}: gave up after {tries.failed} attempts; last: {last.what}"
                ),
                body=last.body,
                method="GET",
            )

        return self._retrying(give_up)(attempt)

    def write(
        self, method: str, url: str, body: str, headers: dict[str, str], idempotent: bool
    ) -> requests.Response:
        """Send a write. A 429 is always retried (the target applied nothing); a 5xx, timeout
        or lost connection only when the request carries an Idempotency-Key (`idempotent`).
        Any other answer, 4xx included, is returned for the caller to judge."""

        def attempt() -> requests.Response:
            try:
                response = self._send(
                    method,
                    url,
                    data=body.encode(),
                    headers={"Content-Type": "application/json", **headers},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                status, what = None, f"{type(exc).__name__} on {method} {url}"
            else:
                status = response.status_code
                if status == 429:
                    raise self._throttled(response, f"HTTP 429 on {method} {url}")
                if status < 500:
                    self.consecutive_failures = 0
                    return response
                what = f"HTTP {status} on {method} {url}"
            if not idempotent:
                raise RequestFailed(self._redact(f"{self.label}: {what}"), status, method=method)
            self._failed(what)
            raise Retryable(what, status=status)

        def give_up(last: Retryable, tries: Tries) -> NoReturn:
            if last.limited:
                raise RequestFailed(
                    f"{self.label}: still rate limited on {url}", 429, method=method
                )
            raise RequestFailed(
                self._redact(f"{self.label}: gave up after {tries.failed} attempts; {last.what}"),
                last.status,
                method=method,
            )

        return self._retrying(give_up, throttled_wait=WRITE_THROTTLE_WAIT_S)(attempt)

    def _retrying(
        self, give_up: Callable[[Retryable, Tries], NoReturn], throttled_wait: float | None = None
    ) -> Any:
        settings = self.settings
        return retrying(
            max_retries=settings.max_retries,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            rng=self.rng,
            sleep=self.sleep,
            give_up=give_up,
            throttled_wait=None if throttled_wait is None else (lambda _tries: throttled_wait),
            before_sleep=self._count_retry,
        )

    def backoff(self, attempt: int) -> float:
        """The jittered wait before retry number `attempt + 1` of a caller's own loop."""
        settings = self.settings
        return backoff_delay(attempt, settings.backoff_base_s, settings.backoff_max_s, self.rng)


ClientT = TypeVar("ClientT", bound=Client)


def connect(
    source: Source,
    connection: Connection,
    budget: RequestBudget,
    label: str,
    kind: type[ClientT] = Client,  # type: ignore[assignment]
) -> tuple[ClientT, str]:
    """The client of a source, authenticated from its connection, and the base URL it talks to:
    the connection's host when it names one, else the YAML's `base_url`."""
    base_url = connection.base_url() or source.base_url
    timeout = (source.connect_timeout_s, source.timeout_s)
    request_auth = auth_module.build(source.auth, connection, base_url, timeout)
    return kind(request_auth, Settings.of(source, connection), budget, label=label), base_url
