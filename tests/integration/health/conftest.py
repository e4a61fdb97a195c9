"""Metrics rows for every stream and target of the shipped config, written by the real writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tieout.config import load_config
from tieout.health import metrics as health_metrics

NOW = datetime.now(UTC)


def healthy_row(**values: Any) -> dict[str, Any]:
    return {
        "requests": 40,
        "records": 1000,
        "quarantined": 0,
        "quarantine_share": 0.0,
        "newest_cursor": NOW - timedelta(hours=2),
        "latency_p95_ms": 35.0,
    } | values


def measure_everything(conn: psycopg.Connection, run_id: str, **overrides: dict) -> None:
    """A metrics row for every stream and target, healthy unless overridden by 'source.stream'."""
    config = load_config()
    for source in config.sources.values():
        for stream in source.streams:
            row = healthy_row(**overrides.get(f"{source.name}.{stream.name}", {}))
            status = "failed" if row.get("error") else "success"
            health_metrics.record(conn, run_id, "extract", source.name, stream.name, status, row)
    for target in config.reverse_etl.targets:
        health_metrics.record(
            conn, run_id, "reverse_etl", target.system, target.entity, "success", healthy_row()
        )


@pytest.fixture
def measure() -> Any:
    return measure_everything
