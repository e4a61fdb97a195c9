"""Run bookkeeping: what each stage of a run did, for `tieout summary` and the drift report.

A stage records its own figures once per run; a rerun of the same run replaces its row,
so reruns never double-count.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from tieout import db
from tieout.db import migrate


def new_run_id(prefix: str = "manual") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}__{stamp}__{uuid.uuid4().hex[:6]}"


def current_run_id() -> str:
    """The Airflow run id when inside a task or set by the CLI; otherwise a fresh one."""
    return (
        os.environ.get("TIEOUT_RUN_ID") or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or new_run_id()
    )


class StageFigures(dict[str, Any]):
    """A dict the stage fills in while it works."""


@contextlib.contextmanager
def record_stage(run_id: str, stage: str, url: str | None = None) -> Iterator[StageFigures]:
    """Every stage runs inside this: the warehouse is brought current first (or the stage
    stops with the command to run), then the stage's row says running, failed or success."""
    migrate.require_current(url)
    figures = StageFigures()
    started = time.monotonic()
    _write(url, run_id, stage, "running", figures, finished=False)
    try:
        yield figures
    except BaseException:
        figures["duration_s"] = round(time.monotonic() - started, 3)
        _write(url, run_id, stage, "failed", figures, finished=True)
        raise
    figures["duration_s"] = round(time.monotonic() - started, 3)
    _write(url, run_id, stage, "success", figures, finished=True)


def _write(
    url: str | None, run_id: str, stage: str, status: str, figures: dict[str, Any], finished: bool
) -> None:
    with db.connect(url) as conn:
        conn.execute(
            """
            insert into ops.stage_runs (run_id, stage, status, figures, started_at, finished_at)
            values (%s, %s, %s, %s::jsonb, now(), case when %s then now() end)
            on conflict (run_id, stage) do update set
                status = excluded.status,
                figures = excluded.figures,
                started_at = case when %s then ops.stage_runs.started_at else now() end,
                finished_at = excluded.finished_at
            """,
            (run_id, stage, status, json.dumps(figures, default=str), finished, finished),
        )


def summary(url: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """The latest run (or the named one) as one JSON-ready object."""
    migrate.require_current(url)
    with db.connect(url) as conn:
        if run_id is None:
            row = conn.execute(
                "select run_id from ops.stage_runs order by started_at desc limit 1"
            ).fetchone()
            if row is None:
                return {"run_id": None, "stages": {}}
            run_id = row[0]
        rows = conn.execute(
            """select stage, status, started_at, finished_at, figures
               from ops.stage_runs where run_id = %s order by started_at""",
            (run_id,),
        ).fetchall()
    stages = {
        stage: {
            "status": status,
            "started_at": started.isoformat() if started else None,
            "finished_at": finished.isoformat() if finished else None,
            **figures,
        }
        for stage, status, started, finished, figures in rows
    }
    return {"run_id": run_id, "stages": stages}


def format_summary(result: dict[str, Any]) -> list[str]:
    """Human lines for a summary: one per stage; per-stream detail (`stage:part`) left to --json."""
    if result["run_id"] is None:
        return ["no run recorded yet"]
    lines = [f"run {result['run_id']}"]
    for stage, figures in result["stages"].items():
        if ":" in stage:
            continue
        shown = ", ".join(
            f"{key}={value}"
            for key, value in figures.items()
            if key not in {"started_at", "finished_at"}
            and not isinstance(value, dict | list)
            and value is not None
        )
        lines.append(f"  {stage:<12} {shown}")
        for key, value in figures.items():
            flat = (
                isinstance(value, dict)
                and value
                and not any(isinstance(v, dict | list) for v in value.values())
            )
            if flat:
                detail = ", ".join(f"{k} {v}" for k, v in value.items())
                lines.append(f"  {'':<12}   {key}: {detail}")
    return lines
