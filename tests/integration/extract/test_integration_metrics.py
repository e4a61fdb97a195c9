"""A real extract against the sandbox with fault knobs writes one ops.integration_metrics row per
stream whose counts match what the sandbox injected: its fault decisions come from a seeded
generator, so replaying that generator over the same number of requests gives the exact counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tieout.extract.run import extract_stream
from tieout_sandbox import faults, server

# the loopback round trip and scheduling on a busy machine, on top of the latency knob
SLACK_MS = 150


@pytest.fixture
def knobs(sandbox: Any) -> Iterator[Any]:
    touched: list[str] = []

    def set_knobs(system: str, **values: Any) -> faults.Knobs:
        touched.append(system)
        server.set_faults(system, sandbox.directory, **values)
        return faults.knobs_from_dict(system, values)

    yield set_knobs
    for system in touched:
        server.clear_faults(system, sandbox.directory)


def injected(knobs: faults.Knobs, requests: int) -> dict[str, int]:
    """What the sandbox's fault middleware answered to `requests` requests in a row."""
    state = faults.FaultState("replay", knobs)
    counts = {"http_429": 0, "errors_5xx": 0, "errors_timeout": 0, "ok": 0}
    for _ in range(requests):
        if state.over_rate_limit() or state.hit(knobs.rate_429):
            counts["http_429"] += 1
        elif state.hit(knobs.error_rate):
            state.error_status()
            counts["errors_5xx"] += 1
        elif state.hit(knobs.timeout_rate):
            counts["errors_timeout"] += 1
        else:
            counts["ok"] += 1
    return counts


def metrics_row(conn: psycopg.Connection, run_id: str, source: str, stream: str) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """select * from ops.integration_metrics
               where run_id = %s and direction = 'extract' and source = %s and stream = %s""",
            (run_id, source, stream),
        ).fetchone()
    assert row is not None, f"no metrics row for {source}.{stream} in {run_id}"
    return row


def test_errors_429_waits_and_latency_against_the_knobs(
    conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any
) -> None:
    fresh("erp", "invoices")
    latency_ms = 120
    set_to = knobs(
        "erp", latency_ms=latency_ms, error_rate=0.2, rate_429=0.1, retry_after_seconds=1, seed=5
    )
    figures = extract_stream("erp", "invoices", "metrics-faults")
    row = metrics_row(conn, "metrics-faults", "erp", "invoices")

    expected = injected(set_to, row["requests"])
    assert expected["errors_5xx"] > 0 and expected["http_429"] > 0
    assert row["errors_5xx"] == expected["errors_5xx"]
    assert row["http_429"] == expected["http_429"] == figures["http_429"]
    assert (row["errors_4xx"], row["errors_timeout"], row["errors_connection"]) == (0, 0, 0)
    assert row["requests"] - row["errors_5xx"] - row["http_429"] == figures["pages"]
    # every 429 said Retry-After: 1 and the client slept it off
    assert row["wait_429_s"] >= 1.0 * row["http_429"]
    assert row["wait_429_s"] < (1.0 + SLACK_MS / 1000) * row["http_429"]
    # only answered pages carry the latency knob, and they are most of the requests
    assert expected["ok"] / row["requests"] > 0.6
    assert latency_ms <= row["latency_p50_ms"] < latency_ms + SLACK_MS
    assert latency_ms <= row["latency_p95_ms"] < latency_ms + SLACK_MS
    assert row["latency_p95_ms"] <= row["latency_p99_ms"]

    assert row["status"] == "success" and row["records"] == figures["records"] > 0
    assert row["records_per_s"] > 0 and row["quarantine_share"] == 0
    assert row["newest_cursor"] is not None and row["freshness_lag_s"] is not None
    assert row["circuit_open"] is False


def test_timeouts_and_quarantine_share(
    conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any
) -> None:
    fresh("shop", "orders")
    set_to = knobs("shop", timeout_rate=0.2, timeout_seconds=1.5, missing_key_rate=0.05, seed=6)
    figures = extract_stream("shop", "orders", "metrics-timeouts")
    row = metrics_row(conn, "metrics-timeouts", "shop", "orders")
    expected = injected(set_to, row["requests"])
    assert expected["errors_timeout"] > 0
    assert row["errors_timeout"] == expected["errors_timeout"]
    assert row["errors_5xx"] == row["http_429"] == 0
    assert row["quarantined"] == figures["quarantined"] > 0
    assert row["quarantine_share"] == pytest.approx(figures["quarantined"] / figures["records"])


def test_a_failed_stream_still_gets_its_row(
    conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any
) -> None:
    fresh("erp", "customers")
    knobs("erp", error_rate=1.0, seed=7)
    with pytest.raises(Exception, match="consecutive failed|gave up"):
        extract_stream("erp", "customers", "metrics-failing")
    row = metrics_row(conn, "metrics-failing", "erp", "customers")
    assert row["status"] == "failed" and row["error"]
    assert row["errors_5xx"] == row["requests"] > 0
