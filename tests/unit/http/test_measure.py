"""The client's request log: latency percentiles against a server with known delays, errors by
class, and the time spent waiting on 429s, over real HTTP on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from requests.auth import AuthBase

from tieout.http.budget import LocalBudget
from tieout.http.client import Client, RequestFailed, Settings
from tieout.http.measure import RequestLog, percentile

# tolerance over a known server delay: the loopback round trip and a busy machine's scheduling
SLACK_S = 0.15


class Scripted(ThreadingHTTPServer):
    """Answers /d/<ms>/<status> after sleeping <ms> with <status> (429 with Retry-After: 1);
    /once429/<ms>/<key> answers 429 the first time, then 200."""

    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    limited: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _, kind, delay_ms, status = self.path.split("?")[0].split("/")
        if kind == "once429":  # the first request of this key is rate limited, then it passes
            status = "200" if status in self.limited else (self.limited.add(status) or "429")
        time.sleep(int(delay_ms) / 1000)
        body = b'{"ok": true}'
        self.send_response(int(status))
        if status == "429":
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = Scripted(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class NoAuth(AuthBase):
    def __call__(self, request):  # type: ignore[no-untyped-def]
        return request


def client(**settings: float) -> Client:
    return Client(
        NoAuth(),
        Settings(max_retries=0, backoff_base_s=0.0, read_timeout_s=0.3, **settings),  # type: ignore[arg-type]
        LocalBudget(10_000, 10_000),
        "test.measure",
    )


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_latency_percentiles_match_the_server_delays(server: str) -> None:
    # twenty requests delayed 10, 20, ... 200 ms: nearest-rank p50 is 100 ms, p95 190 ms, p99 200
    delays = list(range(10, 201, 10))
    http = client()
    for delay in reversed(delays):
        http.get(f"{server}/d/{delay}/200")
    summary = http.request_log.summary()
    assert summary["requests"] == 20
    assert 100 <= summary["latency_p50_ms"] < 100 + SLACK_S * 1000
    assert 190 <= summary["latency_p95_ms"] < 190 + SLACK_S * 1000
    assert 200 <= summary["latency_p99_ms"] < 200 + SLACK_S * 1000
    assert summary["latency_p50_ms"] < 190 <= summary["latency_p95_ms"]


def test_errors_are_counted_by_class(server: str) -> None:
    http = client()
    for status in (404, 401, 500, 503, 503):
        with contextlib.suppress(RequestFailed):
            http.get(f"{server}/d/0/{status}")
    with contextlib.suppress(RequestFailed):
        http.get(f"{server}/d/1000/200")  # longer than the 0.3 s read timeout
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with contextlib.suppress(RequestFailed):
        http.get(f"http://127.0.0.1:{closed}/d/0/200")
    log = http.request_log
    assert (log.errors_4xx, log.errors_5xx, log.errors_timeout, log.errors_connection) == (
        2,
        3,
        1,
        1,
    )
    assert log.requests == 7 and log.errors == 7 and log.http_429 == 0


def test_time_waiting_on_429_is_the_retry_after_sleep(server: str) -> None:
    log = RequestLog()
    slept: list[float] = []
    sleep = log.sleeper(lambda s: slept.append(s) or time.sleep(s))
    log.record(0.01, 200, None)
    sleep(0.05)  # a backoff after a success is not a 429 wait
    log.record(0.01, 429, None)
    sleep(0.2)
    assert log.http_429 == 1
    assert 0.2 <= log.wait_429_s < 0.2 + SLACK_S

    http = client()
    http.get(f"{server}/once429/0/a")  # 429 with Retry-After: 1, then 200
    http.get(f"{server}/once429/0/b")
    log = http.request_log
    assert (log.requests, log.http_429, log.errors) == (4, 2, 0)
    assert 2.0 <= log.wait_429_s < 2.0 + 2 * SLACK_S
