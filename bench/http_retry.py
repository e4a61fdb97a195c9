"""What tenacity costs the HTTP client per request, next to the hand-written loop it replaced
and next to one loopback GET of a page.

  loop    the retry controller alone around a call that succeeds at once: tieout.http.retry's
          tenacity controller against a plain `while True` loop with the same counting (the
          shape of the loop extract and reverse ETL each had), microseconds per call
  retry   the same around a call that fails twice (retryable) and then succeeds, sleeps off
  get     Client.get of a 100-record JSON page from a loopback server, microseconds per call

Each figure is the median of `--repeat` runs (default 5). The last line is one JSON object.
Usage:

  .venv/bin/python bench/http_retry.py --calls 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

from requests.auth import AuthBase

from tieout.http.budget import LocalBudget
from tieout.http.client import Client, Settings
from tieout.http.retry import Retryable, Tries, backoff_delay, retrying

PAGE = json.dumps(
    {"items": [{"id": i, "name": f"item {i}", "amount": i * 1.25} for i in range(100)]}
).encode()


def hand_written(call: Callable[[], Any], max_retries: int, rng: random.Random) -> Any:
    """The loop tenacity replaced: two counters, a cap on each, backoff on the right one."""
    failed = throttled = 0
    while True:
        try:
            return call()
        except Retryable as error:
            if error.limited:
                throttled += 1
                if throttled > max(20, max_retries * 4):
                    raise
            else:
                failed += 1
                if failed > max_retries:
                    raise
            delay = error.delay
            if delay is None:
                delay = backoff_delay((throttled if error.limited else failed) - 1, 0.0, 0.0, rng)
            _ = delay  # sleeping is not what is measured


def with_tenacity(call: Callable[[], Any], max_retries: int, rng: random.Random) -> Any:
    def give_up(last: Retryable, tries: Tries) -> NoReturn:
        raise last

    controller = retrying(
        max_retries=max_retries,
        backoff_base_s=0.0,
        backoff_max_s=0.0,
        rng=rng,
        sleep=lambda _seconds: None,
        give_up=give_up,
    )
    return controller(call)


def per_call_us(loop: Callable[..., Any], failures: int, calls: int) -> float:
    rng = random.Random(1)
    started = time.perf_counter()
    left = [0]

    def call() -> int:
        if left[0]:
            left[0] -= 1
            raise Retryable("HTTP 503 on GET /x", status=503)
        return 1

    for _ in range(calls):
        left[0] = failures
        loop(call, 5, rng)
    return (time.perf_counter() - started) / calls * 1e6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without this, Nagle and delayed ACK add 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        return


class NoAuth(AuthBase):
    def __call__(self, request):  # type: ignore[no-untyped-def]
        return request


def get_us(calls: int) -> float:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/items"
    client = Client(NoAuth(), Settings(), LocalBudget(1e9, 1e9), "bench.items")
    try:
        client.get(url, check=lambda r: r.json())
        started = time.perf_counter()
        for _ in range(calls):
            client.get(url, check=lambda r: r.json())
        return (time.perf_counter() - started) / calls * 1e6
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--gets", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    def median(measure: Callable[[], float]) -> float:
        return round(statistics.median(measure() for _ in range(args.repeat)), 2)

    load_before = os.getloadavg()[0]
    figures: dict[str, float] = {
        "loop_tenacity_us": median(lambda: per_call_us(with_tenacity, 0, args.calls)),
        "loop_hand_written_us": median(lambda: per_call_us(hand_written, 0, args.calls)),
        "retry2_tenacity_us": median(lambda: per_call_us(with_tenacity, 2, args.calls)),
        "retry2_hand_written_us": median(lambda: per_call_us(hand_written, 2, args.calls)),
        "get_100_records_us": median(lambda: get_us(args.gets)),
    }
    extra = figures["loop_tenacity_us"] - figures["loop_hand_written_us"]
    figures["tenacity_extra_us"] = round(extra, 2)
    figures["tenacity_share_of_get"] = round(extra / figures["get_100_records_us"], 4)
    print(
        f"per successful call: tenacity {figures['loop_tenacity_us']} µs, "
        f"hand-written {figures['loop_hand_written_us']} µs"
    )
    print(
        f"per call that fails twice first: tenacity {figures['retry2_tenacity_us']} µs, "
        f"hand-written {figures['retry2_hand_written_us']} µs"
    )
    print(
        f"one loopback GET of a 100-record page: {figures['get_100_records_us']} µs; "
        f"tenacity adds {extra:.1f} µs ({figures['tenacity_share_of_get']:.2%})"
    )
    figures["load_average"] = round(load_before, 1)
    print(f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
