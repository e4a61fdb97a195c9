"""Run bookkeeping: what each stage of a run did, for `tieout summary` and the drift report.

A stage records its own figures once per run; a rerun of the same run replaces its row,
so reruns never double-count. A running stage holds a lease it renews while it works, so a
process killed outright (SIGKILL, a lost worker) is found and marked `abandoned`, never left
`running` for monitoring to trust.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg

from tieout import db
from tieout.db import migrate

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 120.0


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


def lease_seconds() -> float:
    """How long a running stage's row stays claimed without a heartbeat (TIEOUT_RUN_LEASE_S)."""
    raw = os.environ.get("TIEOUT_RUN_LEASE_S")
    if not raw:
        return DEFAULT_LEASE_S
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"TIEOUT_RUN_LEASE_S must be a number of seconds, got {raw!r}") from None
    if seconds <= 0:
        raise ValueError(f"TIEOUT_RUN_LEASE_S must be above 0, got {raw!r}")
    return seconds


def this_process() -> tuple[str, str, int]:
    """(host, pid namespace, pid): a pid means something only on its host and in its namespace."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return socket.gethostname(), namespace, os.getpid()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


ABANDON_STAGES = """
update ops.stage_runs set status = 'abandoned', abandoned_at = now(), abandoned_by = %(by)s
where status = 'running'
  and (lease_expires_at < now()
       or (host = %(host)s and pid_namespace = %(namespace)s and pid = any(%(gone)s)))
returning run_id, stage, host, pid
"""

ABANDON_STREAMS = """
update ops.extract_runs e set status = 'abandoned', abandoned_at = now(), abandoned_by = %(by)s
from ops.stage_runs s
where e.status = 'running' and s.status = 'abandoned'
  and s.run_id = e.run_id and s.stage = 'extract:' || e.source || '.' || e.stream
"""

# the per-run `extract` row sums its streams and has no lease of its own
ABANDON_EXTRACT_SUMMARIES = """
update ops.stage_runs s set status = 'abandoned', abandoned_at = now(), abandoned_by = %(by)s
where s.stage = 'extract' and s.status = 'running'
  and exists (select 1 from ops.extract_runs e
              where e.run_id = s.run_id and e.status = 'abandoned')
  and not exists (select 1 from ops.extract_runs e
                  where e.run_id = s.run_id and e.status = 'running')
"""


def abandon_dead_runs(conn: psycopg.Connection[Any], found_by: str) -> list[tuple[str, str]]:
    """Mark `abandoned` every running stage nobody holds any more; returns (run_id, stage).

    Nobody holds a run whose lease expired (any host: the lease is renewed in the database's
    own clock), or, on this host and pid namespace, whose process no longer exists. A live
    run on another machine keeps renewing its lease and is never touched.
    """
    host, namespace, _ = this_process()
    local = conn.execute(
        """select distinct pid from ops.stage_runs
           where status = 'running' and host = %s and pid_namespace = %s and pid is not null""",
        (host, namespace),
    ).fetchall()
    gone = [pid for (pid,) in local if _pid_gone(pid)]
    params = {"by": found_by, "host": host, "namespace": namespace, "gone": gone}
    with conn.transaction():
        # each stage's role may mark only its own stages' rows (ops.stage_runs' row policy),
        # so extract's per-stream rows are closed by extract's next run
        marked = conn.execute(ABANDON_STAGES, params).fetchall()
        if any(stage.startswith("extract") for _, stage, _, _ in marked):
            conn.execute(ABANDON_STREAMS, params)
            conn.execute(ABANDON_EXTRACT_SUMMARIES, params)
    for run_id, stage, on_host, pid in marked:
        log.warning(
            "stage %s of run %s (host %s, pid %s) is gone: marked abandoned",
            stage,
            run_id,
            on_host,
            pid,
        )
    return [(run_id, stage) for run_id, stage, _, _ in marked]


class Lease(threading.Thread):
    """Renews a running stage's lease every quarter of its length until stopped."""

    def __init__(self, url: str | None, run_id: str, stage: str, seconds: float) -> None:
        super().__init__(name=f"tieout-lease-{stage}", daemon=True)
        self.url, self.run_id, self.stage, self.seconds = url, run_id, stage, seconds
        self.stopped = threading.Event()

    def renew(self) -> bool:
        """One heartbeat; False when the row is no longer this process's running row."""
        host, namespace, pid = this_process()
        with db.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(
                """update ops.stage_runs set status = 'running', heartbeat_at = now(),
                       lease_expires_at = now() + make_interval(secs => %s),
                       abandoned_at = null, abandoned_by = null
                   where run_id = %s and stage = %s and status in ('running', 'abandoned')
                     and host = %s and pid_namespace = %s and pid = %s""",
                (self.seconds, self.run_id, self.stage, host, namespace, pid),
            )
            return cur.rowcount == 1

    def run(self) -> None:
        while not self.stopped.wait(self.seconds / 4):
            try:
                self.renew()
            except (psycopg.Error, db.DatabaseUnreachable) as exc:
                log.warning("could not renew the lease of %s: %s", self.stage, exc)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=self.seconds)


@contextlib.contextmanager
def record_stage(run_id: str, stage: str, url: str | None = None) -> Iterator[StageFigures]:
    """Every stage runs inside this: the warehouse is brought current first (or the stage
    stops with the command to run), then the stage's row says running, failed or success."""
    migrate.require_current(url)
    figures = StageFigures()
    started = time.monotonic()
    seconds = lease_seconds()
    with db.connect(url, autocommit=True) as conn:
        abandon_dead_runs(conn, f"{stage} of run {run_id} on {socket.gethostname()}")
    _write(url, run_id, stage, "running", figures, finished=False, lease_s=seconds)
    lease = Lease(url, run_id, stage, seconds)
    lease.start()
    try:
        yield figures
    except BaseException:
        lease.stop()
        figures["duration_s"] = round(time.monotonic() - started, 3)
        _write(url, run_id, stage, "failed", figures, finished=True)
        raise
    lease.stop()
    figures["duration_s"] = round(time.monotonic() - started, 3)
    _write(url, run_id, stage, "success", figures, finished=True)


def _write(
    url: str | None,
    run_id: str,
    stage: str,
    status: str,
    figures: dict[str, Any],
    finished: bool,
    lease_s: float | None = None,
) -> None:
    host, namespace, pid = this_process()
    with db.connect(url) as conn:
        conn.execute(
            """
            insert into ops.stage_runs (run_id, stage, status, figures, started_at, finished_at,
                                        host, pid_namespace, pid, heartbeat_at, lease_expires_at)
            values (%(run)s, %(stage)s, %(status)s, %(figures)s::jsonb, now(),
                    case when %(finished)s then now() end, %(host)s, %(namespace)s, %(pid)s,
                    now(), now() + make_interval(secs => %(lease)s))
            on conflict (run_id, stage) do update set
                status = excluded.status,
                figures = excluded.figures,
                started_at = case when %(finished)s then ops.stage_runs.started_at
                                  else now() end,
                finished_at = excluded.finished_at,
                host = excluded.host,
                pid_namespace = excluded.pid_namespace,
                pid = excluded.pid,
                heartbeat_at = excluded.heartbeat_at,
                lease_expires_at = excluded.lease_expires_at,
                abandoned_at = case when %(finished)s then ops.stage_runs.abandoned_at end,
                abandoned_by = case when %(finished)s then ops.stage_runs.abandoned_by end
            """,
            {
                "run": run_id,
                "stage": stage,
                "status": status,
                "figures": json.dumps(figures, default=str),
                "finished": finished,
                "host": host,
                "namespace": namespace,
                "pid": pid,
                "lease": lease_s,
            },
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
        failures = failed_streams(conn, run_id)
    stages = {
        stage: {
            "status": status,
            "started_at": started.isoformat() if started else None,
            "finished_at": finished.isoformat() if finished else None,
            **figures,
        }
        for stage, status, started, finished, figures in rows
    }
    return {"run_id": run_id, "stages": stages, "failed_streams": failures}


def failed_streams(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """The run's streams that did not load, with their error and, once the extract outcome was
    recorded, the run they have been failing since."""
    rows = conn.execute(
        """select e.source, e.stream, e.status, e.error, f.failing_since, f.failing_since_run_id
           from ops.extract_runs e
           left join ops.source_failures f
             on f.run_id = e.run_id and f.source = e.source and f.stream = e.stream
           where e.run_id = %(run)s and e.status <> 'success'
           union all
           select f.source, f.stream, f.status, f.error, f.failing_since, f.failing_since_run_id
           from ops.source_failures f
           where f.run_id = %(run)s and not exists (
               select 1 from ops.extract_runs e
               where e.run_id = f.run_id and e.source = f.source and e.stream = f.stream)
           order by 1, 2""",
        {"run": run_id},
    ).fetchall()
    return [
        {
            "source": source,
            "stream": stream,
            "status": status,
            "error": error,
            "failing_since": since.isoformat() if since else None,
            "failing_since_run_id": since_run,
        }
        for source, stream, status, error, since, since_run in rows
    ]


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
    for failure in result.get("failed_streams") or []:
        since = failure.get("failing_since_run_id")
        lines.append(
            f"  FAILED       {failure['source']}.{failure['stream']} ({failure['status']}): "
            f"{failure['error']}" + (f" [failing since run {since}]" if since else "")
        )
    return lines
