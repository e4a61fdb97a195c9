"""One row of integration metrics per stream (extract) or target (reverse ETL) per run, written
to ops.integration_metrics and, inside an Airflow task, sent through Airflow's metrics.

Written once at the end of a stream's run, never per request; a failure to record metrics is
logged and never fails the run it describes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from tieout import db
from tieout.http.measure import RequestLog

log = logging.getLogger("tieout.health")

KEEP_DAYS = 400
# the request log's figures (`RequestLog.summary()`), stored and sent as gauges alike
REQUEST_COLUMNS = (
    "requests",
    "errors_4xx",
    "errors_5xx",
    "errors_timeout",
    "errors_connection",
    "http_429",
    "wait_429_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)
COLUMNS = (
    *REQUEST_COLUMNS,
    "records",
    "records_per_s",
    "quarantined",
    "quarantine_share",
    "newest_cursor",
    "freshness_lag_s",
    "circuit_open",
    "duration_s",
    "error",
)
NOT_NULL = {c: 0 for c in REQUEST_COLUMNS[:7] + ("records", "quarantined", "duration_s")} | {
    "circuit_open": False
}
# what goes to StatsD/OpenTelemetry as a gauge, per stream: tieout.<direction>.<source>.<stream>.*
GAUGES = (
    *REQUEST_COLUMNS,
    "records_per_s",
    "quarantine_share",
    "freshness_lag_s",
)


def measured(
    request_log: RequestLog,
    *,
    records: int,
    quarantined: int,
    duration_s: float,
    newest_cursor: datetime | None = None,
    circuit_open: bool = False,
    error: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The metrics row of one stream run from its client's request log and the run's counts."""
    now = now or datetime.now(UTC)
    row: dict[str, Any] = request_log.summary()
    row.update(
        records=records,
        records_per_s=round(records / duration_s, 3) if duration_s > 0 else None,
        quarantined=quarantined,
        quarantine_share=round(quarantined / records, 6) if records else None,  # records count them
        newest_cursor=newest_cursor,
        freshness_lag_s=(
            round((now - newest_cursor).total_seconds(), 3) if newest_cursor else None
        ),
        circuit_open=circuit_open,
        duration_s=round(duration_s, 3),
        error=error[:2000] if error else None,
    )
    return row


def newest_cursor(conn: psycopg.Connection[Any], source: str, stream: str) -> datetime | None:
    """The high-water mark of the stream's last completed pass, as a time (None if not one)."""
    row = conn.execute(
        "select cursor_value from ops.sync_state where source = %s and stream = %s",
        (source, stream),
    ).fetchone()
    if not row or not row[0]:
        return None
    try:
        value = datetime.fromisoformat(str(row[0]).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record(
    conn: psycopg.Connection[Any],
    run_id: str,
    direction: str,
    source: str,
    stream: str,
    status: str,
    row: dict[str, Any],
) -> None:
    """Upsert the row (a rerun of the same run replaces it) and prune rows past KEEP_DAYS."""
    names = ", ".join(COLUMNS)
    values = ", ".join(f"%({c})s" for c in COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
    params = {c: row.get(c) if row.get(c) is not None else NOT_NULL.get(c) for c in COLUMNS}
    params.update(run_id=run_id, direction=direction, source=source, stream=stream, status=status)
    with conn.transaction():
        conn.execute(
            f"""insert into ops.integration_metrics
                    (run_id, direction, source, stream, status, {names})
                values (%(run_id)s, %(direction)s, %(source)s, %(stream)s, %(status)s, {values})
                on conflict (run_id, direction, source, stream) do update set
                    status = excluded.status, {updates}, recorded_at = now()""",  # noqa: S608 - fixed column names
            params,
        )
        conn.execute(
            """delete from ops.integration_metrics
               where recorded_at < now() - make_interval(days => %s)""",
            (KEEP_DAYS,),
        )
    emit(direction, source, stream, status, row)


def record_safely(url: str | None, *args: Any) -> None:
    """record() on its own connection; a problem is logged, never raised into the run."""
    try:
        with db.connect(url, autocommit=True) as conn:
            record(conn, *args)
    except Exception as exc:  # noqa: BLE001 - metrics must not fail the stream they describe
        log.warning("could not record integration metrics for %s: %s", args[2:4], exc)


def emit(direction: str, source: str, stream: str, status: str, row: dict[str, Any]) -> None:
    """Send the row's gauges through Airflow's metrics API; a no-op outside an Airflow task
    (and inside one when Airflow's metrics are off: its backend then discards them)."""
    if not db.in_airflow_task():
        return
    try:
        from airflow.sdk.observability import stats
    except ImportError:
        return
    prefix = f"tieout.{direction}.{source}.{stream}"
    tags = {"direction": direction, "source": source, "stream": stream}
    try:
        for name in GAUGES:
            value = row.get(name)
            if value is not None:
                stats.gauge(f"{prefix}.{name}", float(value), tags=tags)
        stats.incr(f"tieout.{direction}.runs", tags={**tags, "status": status})
    except Exception as exc:  # noqa: BLE001 - a metrics backend must not fail the run
        log.warning("could not emit metrics for %s.%s: %s", source, stream, exc)
