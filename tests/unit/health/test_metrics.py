"""A metrics row from a request log, and its gauges through Airflow's metrics API only inside a
task (the backend is whatever Airflow's stats module was initialized with)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tieout.health import metrics
from tieout.http.measure import RequestLog


class Recording:
    """A stats backend that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, dict[str, Any]]] = []

    def gauge(self, stat: str, value: float, **kwargs: Any) -> None:
        self.sent.append(("gauge", stat, value, kwargs.get("tags") or {}))

    def incr(self, stat: str, count: int = 1, **kwargs: Any) -> None:
        self.sent.append(("incr", stat, count, kwargs.get("tags") or {}))


@pytest.fixture
def backend() -> Iterator[Recording]:
    from airflow.sdk.observability import stats

    recording = Recording()
    stats.initialize(factory=lambda: recording, export_legacy_names=False)  # type: ignore[arg-type, return-value]
    try:
        yield recording
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)


def a_log() -> RequestLog:
    log = RequestLog()
    for ms in range(1, 101):
        log.record(ms / 1000, 200, None)
    log.record(0.001, 503, None)
    log.record(0.001, 429, None)
    return log


def test_measured_row() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    row = metrics.measured(
        a_log(),
        records=400,
        quarantined=8,
        duration_s=2.0,
        newest_cursor=now - timedelta(hours=3),
        now=now,
    )
    assert row["requests"] == 102 and row["errors_5xx"] == 1 and row["http_429"] == 1
    # nearest rank over 102 values, three of 1 ms (the 503 and the 429 too) then 2..100 ms:
    # p50 is the 51st (49 ms), p95 the 97th (95 ms), p99 the 101st (99 ms)
    assert (row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"]) == (49, 95, 99)
    assert row["records_per_s"] == 200.0 and row["quarantine_share"] == 0.02
    assert row["freshness_lag_s"] == 3 * 3600.0


def test_gauges_only_inside_a_task(backend: Recording, monkeypatch: pytest.MonkeyPatch) -> None:
    row = metrics.measured(a_log(), records=10, quarantined=0, duration_s=1.0)
    monkeypatch.setattr(metrics.db, "in_airflow_task", lambda: False)
    metrics.emit("extract", "erp", "invoices", "success", row)
    assert backend.sent == []

    monkeypatch.setattr(metrics.db, "in_airflow_task", lambda: True)
    metrics.emit("extract", "erp", "invoices", "success", row)
    gauges = {stat: value for kind, stat, value, _ in backend.sent if kind == "gauge"}
    assert gauges["tieout.extract.erp.invoices.latency_p95_ms"] == 95.0
    assert gauges["tieout.extract.erp.invoices.errors_5xx"] == 1.0
    assert "tieout.extract.erp.invoices.freshness_lag_s" not in gauges  # no cursor: no value
    tags = {"direction": "extract", "source": "erp", "stream": "invoices"}
    assert [(stat, t) for kind, stat, _, t in backend.sent if kind == "incr"] == [
        ("tieout.extract.runs", {**tags, "status": "success"})
    ]
    assert all(t == tags for kind, _, _, t in backend.sent if kind == "gauge")
