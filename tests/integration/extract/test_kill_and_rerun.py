"""kill -9 at any moment, then rerun: no record lost, none duplicated, counts still add up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tieout_sandbox import server


def start_extract(source: str, stream: str, run_id: str, warehouse_url: str) -> subprocess.Popen:
    env = {**os.environ, "TIEOUT_DATABASE_URL": warehouse_url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tieout.cli",
            "extract",
            "--source",
            source,
            "--stream",
            stream,
            "--run-id",
            run_id,
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def pages_committed(conn: psycopg.Connection, source: str, stream: str) -> int:
    row = conn.execute(
        "select pass_pages from ops.sync_state where source = %s and stream = %s",
        (source, stream),
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def slow_sources(sandbox: Any) -> Iterator[None]:
    for system in ("shop", "erp"):
        server.set_faults(system, sandbox.directory, latency_ms=40)
    yield
    for system in ("shop", "erp"):
        server.clear_faults(system, sandbox.directory)


@pytest.mark.parametrize(
    ("source", "stream", "table"),
    [("shop", "orders", "orders"), ("erp", "sales_orders", "sales_orders")],
)
def test_kill_minus_nine_then_rerun(
    source: str,
    stream: str,
    table: str,
    conn: psycopg.Connection,
    sandbox: Any,
    fresh: Any,
    slow_sources: None,
    warehouse_url: str,
) -> None:
    fresh(source, stream)
    rng = random.Random(7)
    kills = 0
    for attempt, after_pages in enumerate((2, 7, 12)):
        process = start_extract(source, stream, f"kill-{stream}-{attempt}", warehouse_url)
        deadline = time.monotonic() + 60
        while pages_committed(conn, source, stream) < after_pages and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.1))  # land anywhere: mid-fetch, mid-COPY, mid-commit
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2, "the stream finished before it could be killed; slow the sandbox down"
    final = start_extract(source, stream, f"kill-{stream}-final", warehouse_url)
    output = final.communicate(timeout=120)[0].decode()
    assert final.returncode == 0, output

    keys = [r[0] for r in conn.execute(f'select _pk from raw."{source}__{stream}"')]
    assert len(keys) == len(set(keys)), "a record was loaded twice"
    assert set(keys) == sandbox.source_keys(source, table), "a record was lost"
    state = conn.execute(
        "select resume, cursor_value is not null from ops.sync_state "
        "where source = %s and stream = %s",
        (source, stream),
    ).fetchone()
    assert state == (None, True)
    # the counters were committed with the rows, so they add up across the killed runs
    counted = conn.execute(
        "select sum(rows) from ops.extract_runs where source = %s and stream = %s "
        "and run_id like 'kill-%%'",
        (source, stream),
    ).fetchone()
    assert counted == (len(keys),)
