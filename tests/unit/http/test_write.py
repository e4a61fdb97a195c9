"""Writes: a 429 is always waited out (nothing was applied), a 5xx or lost answer is retried only
when the request carries an Idempotency-Key, a 4xx is the caller's to judge, and an expired
token is renewed once without counting as a retry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from requests.auth import AuthBase

from tieout.http.budget import LocalBudget
from tieout.http.client import Client, RequestFailed, Settings

SECRET = "write-secret-42"


class Target(ThreadingHTTPServer):
    """Answers each PUT with the next status of `script` (then 200); counts what it got."""

    daemon_threads = True

    def __init__(self) -> None:
        self.script: list[int] = []
        self.retry_after: str | None = None
        self.bodies: list[Any] = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Target

    def do_PUT(self) -> None:  # noqa: N802 - http.server's name
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status = self.server.script.pop(0) if self.server.script else 200
        body = b'{"ok": true}'
        self.send_response(status)
        if status == 429 and self.server.retry_after:
            self.send_header("Retry-After", self.server.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Renewing(AuthBase):
    """A token auth that can log in again, as OAuth2 can."""

    def __init__(self) -> None:
        self.invalidated = 0

    def invalidate(self) -> None:
        self.invalidated += 1

    def __call__(self, request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {SECRET}"
        return request


def client(sleeps: list[float], penalties: list[float] | None = None, **settings: Any) -> Client:
    budget = LocalBudget(1000, 1000, sleep=lambda _: None)
    if penalties is not None:
        penalize = budget.penalize
        budget.penalize = lambda s: penalties.append(s) or penalize(s)  # type: ignore[method-assign]
    return Client(
        Renewing(),
        Settings(**{"max_retries": 3, "backoff_base_s": 0.5, **settings}, secrets=[SECRET]),
        budget,
        "reverse_etl erp.customers",
        sleep=sleeps.append,
        seed=2,
    )


def put(http: Client, target: Target, idempotent: bool) -> Any:
    url = f"http://127.0.0.1:{target.server_address[1]}/customers/7"
    return http.write("PUT", url, '{"email": "a@b"}', {}, idempotent=idempotent)


def test_idempotent_write_retries_5xx_then_succeeds(target: Target) -> None:
    target.script = [503, 500]
    sleeps: list[float] = []
    http = client(sleeps)
    assert put(http, target, idempotent=True).status_code == 200
    assert len(target.bodies) == 3 and http.counters.writes == 3
    assert http.counters.retries == 2 and len(sleeps) == 2
    assert all(0 <= s <= 30 for s in sleeps)


def test_non_idempotent_write_is_never_resent(target: Target) -> None:
    target.script = [503]
    sleeps: list[float] = []
    http = client(sleeps)
    with pytest.raises(RequestFailed) as failed:
        put(http, target, idempotent=False)
    assert failed.value.status == 503 and failed.value.method == "PUT"
    assert str(failed.value).startswith("reverse_etl erp.customers: HTTP 503 on PUT http://")
    assert len(target.bodies) == 1 and sleeps == [] and http.counters.retries == 0


def test_idempotent_write_gives_up_after_max_retries(target: Target) -> None:
    target.script = [502] * 10
    sleeps: list[float] = []
    http = client(sleeps, max_retries=2, circuit_breaker_failures=50)
    with pytest.raises(RequestFailed, match="gave up after 3 attempts; HTTP 502 on PUT") as failed:
        put(http, target, idempotent=True)
    assert failed.value.status == 502 and len(target.bodies) == 3 and len(sleeps) == 2


def test_429_is_retried_even_without_a_key(target: Target) -> None:
    target.script = [429, 429]
    sleeps: list[float] = []
    http = client(sleeps)
    assert put(http, target, idempotent=False).status_code == 200
    assert sleeps == [1.0, 1.0]  # no Retry-After: a fixed pause
    assert http.counters.http_429 == 2 and http.counters.retries == 2


def test_429_retry_after_is_honoured_and_pauses_the_budget(target: Target) -> None:
    target.script = [429]
    target.retry_after = "3"
    sleeps: list[float] = []
    penalties: list[float] = []
    http = client(sleeps, penalties)
    assert put(http, target, idempotent=True).status_code == 200
    assert sleeps == [3.0] and penalties == [3.0]


def test_429_forever_gives_up(target: Target) -> None:
    target.script = [429] * 30
    target.retry_after = "0"
    http = client([])
    with pytest.raises(RequestFailed, match="still rate limited on http://") as failed:
        put(http, target, idempotent=True)
    assert failed.value.status == 429 and len(target.bodies) == 21  # max(20, 4 x 3) + 1


def test_4xx_is_returned_and_401_renews_the_token_once(target: Target) -> None:
    target.script = [401, 422]
    sleeps: list[float] = []
    http = client(sleeps)
    assert put(http, target, idempotent=False).status_code == 422
    assert http.auth.invalidated == 1  # type: ignore[attr-defined]
    assert http.counters.writes == 2 and http.counters.retries == 0 and sleeps == []
    target.script = [401, 401]
    assert put(http, target, idempotent=False).status_code == 401  # renewed once, not again
