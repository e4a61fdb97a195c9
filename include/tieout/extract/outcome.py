"""The extract stage's outcome for one run: which streams failed, with their error and the run
they have been failing since, kept in ops.source_failures for the stages after it.

A failing source must not take the night down: the other sources' streams load, dbt builds from
the raw data that is there, reconcile keeps the failed system's findings as they were (stale),
reverse ETL skips writes that depend on it, and the report names the failure at its top. Each
stream writes its own failure (status and error in ops.extract_runs); this step reads them once
all streams are done. It never reads Airflow's metadata: a stream whose task left no row in
ops.extract_runs counts as failed. A night where no stream loaded stops here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from tieout import db

log = logging.getLogger(__name__)

NOT_RECORDED = (
    "no extract of this stream was recorded in this run (its task did not start, or died "
    "before it wrote anything)"
)


class NothingExtracted(RuntimeError):
    """No stream of the run loaded: there is nothing fresh to build a night on."""


@dataclass(frozen=True)
class StreamFailure:
    source: str
    stream: str
    status: str  # failed | abandoned | running | not_recorded
    error: str
    failing_since: datetime
    failing_since_run_id: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failing_since": self.failing_since.isoformat()}


# the first run of the stream's current run of failures: its earliest unsuccessful run after
# its latest successful one (this run when it has no earlier failure)
FAILING_SINCE = """
select run_id, started_at from ops.extract_runs
where source = %(source)s and stream = %(stream)s and status <> 'success'
  and started_at > coalesce(
      (select max(started_at) from ops.extract_runs
       where source = %(source)s and stream = %(stream)s and status = 'success'),
      '-infinity')
order by started_at, run_id
limit 1
"""


def failures(
    conn: psycopg.Connection[Any], run_id: str, streams: Iterable[tuple[str, str]]
) -> tuple[list[StreamFailure], list[tuple[str, str]]]:
    """(the run's failed streams, its successful ones) among `streams`, from ops.extract_runs."""
    rows = {
        (source, stream): (status, error, started)
        for source, stream, status, error, started in conn.execute(
            """select source, stream, status, error, started_at from ops.extract_runs
               where run_id = %s""",
            (run_id,),
        ).fetchall()
    }
    now_row = conn.execute("select now()").fetchone()
    assert now_row is not None
    failed: list[StreamFailure] = []
    succeeded: list[tuple[str, str]] = []
    for source, stream in streams:
        status, error, _ = rows.get((source, stream), ("not_recorded", NOT_RECORDED, None))
        if status == "success":
            succeeded.append((source, stream))
            continue
        since = conn.execute(FAILING_SINCE, {"source": source, "stream": stream}).fetchone()
        since_run, since_at = since if since is not None else (run_id, now_row[0])
        failed.append(
            StreamFailure(
                source,
                stream,
                status,
                error or f"the stream ended {status} without an error message",
                since_at,
                since_run,
            )
        )
    return failed, succeeded


def record(
    run_id: str, streams: Iterable[tuple[str, str]], url: str | None = None
) -> dict[str, Any]:
    """Keep the run's failed streams in ops.source_failures (a rerun replaces them) and return
    them; raises NothingExtracted when no stream of the run loaded."""
    planned = list(streams)
    with db.connect(db.role_url("loader", url)) as conn:
        failed, succeeded = failures(conn, run_id, planned)
        with conn.transaction():
            conn.execute("delete from ops.source_failures where run_id = %s", (run_id,))
            for f in failed:
                conn.execute(
                    """insert into ops.source_failures (run_id, source, stream, status, error,
                           failing_since, failing_since_run_id)
                       values (%s, %s, %s, %s, %s, %s, %s)""",
                    (
                        run_id,
                        f.source,
                        f.stream,
                        f.status,
                        f.error,
                        f.failing_since,
                        f.failing_since_run_id,
                    ),
                )
        conn.commit()
    for f in failed:
        log.warning(
            "extract: %s.%s failed in this run (%s), failing since run %s at %s: %s",
            f.source,
            f.stream,
            f.status,
            f.failing_since_run_id,
            f.failing_since.isoformat(timespec="seconds"),
            f.error,
        )
    if planned and not succeeded:
        raise NothingExtracted(
            f"no stream of run {run_id} loaded ({len(failed)} failed, e.g. "
            f"{failed[0].source}.{failed[0].stream}: {failed[0].error}); the night stops "
            "here, as there is nothing new to build on"
        )
    return {
        "streams": len(planned),
        "succeeded": len(succeeded),
        "failed": [f.as_dict() for f in failed],
        "stale_sources": sorted({f.source for f in failed}),
    }


def stale_sources(conn: psycopg.Connection[Any], run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The sources that failed to extract in `run_id`, each with its failed streams (empty when
    the run recorded no outcome, e.g. a CLI run of one stage)."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not _table_exists(conn):
        return found
    for source, stream, status, error, since, since_run in conn.execute(
        """select source, stream, status, error, failing_since, failing_since_run_id
           from ops.source_failures where run_id = %s order by source, stream""",
        (run_id,),
    ).fetchall():
        found.setdefault(source, []).append(
            {
                "source": source,
                "stream": stream,
                "status": status,
                "error": error,
                "failing_since": since.isoformat(),
                "failing_since_run_id": since_run,
            }
        )
    return found


def _table_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select to_regclass('ops.source_failures') is not null").fetchone()
    return bool(row and row[0])
