"""A night through Airflow's scheduler, as the REST API sees it: trigger `tieout_nightly` for a
logical date, follow it with one line per finished task, and measure it from its task instances.

Used by `tieout demo` and bench/nightly.py. Everything here goes through a `call(method, path,
**kwargs) -> requests.Response` (Cluster.call or AirflowClient.request), so it is tested with a
fake API and works against any Airflow 3 that tieout's client can log in to.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

DAG_ID = "tieout_nightly"
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
RUN_FINISHED = frozenset({"success", "failed"})
# the DAG's task groups, as bench/nightly.py reports them (the first segment of a task id)
STAGES = ("extract", "transform", "validate", "reconcile", "reverse_etl", "report")


class Response(Protocol):
    status_code: int
    text: str

    @property
    def ok(self) -> bool: ...

    def json(self) -> Any: ...


Call = Callable[..., Response]


class RunFailed(RuntimeError):
    """The API refused a request the night needs; names the request and Airflow's answer."""


def _checked(answer: Response, what: str) -> Any:
    if not answer.ok:
        raise RunFailed(f"{what}: HTTP {answer.status_code} {answer.text[:500]}")
    return answer.json()


def night_dates(
    now: datetime, whole_tables_on: Callable[[date], bool] | None = None
) -> tuple[datetime, datetime]:
    """Two distinct logical dates at the DAG's schedule time (02:00 UTC): the last one that has
    passed and the one before. Between midnight and 02:00 that is yesterday's: a run for a
    logical date still to come is created, but the scheduler starts none of its tasks.

    With `whole_tables_on` (validation.yml's nights, `Validation.full_on`), both step back a
    day at a time until the second is a night that validates changed rows: the second night
    is the one with little new data, and on a whole-table night it would validate every
    table (a bench run on a Monday measured that instead)."""
    latest = now.astimezone(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    if latest > now:
        latest -= timedelta(days=1)
    for back in range(7):
        second = latest - timedelta(days=back)
        if whole_tables_on is None or not whole_tables_on(second.date()):
            break
    else:
        second = latest  # every night validates whole tables
    return second - timedelta(days=1), second


def wait_for_dag(call: Call, timeout_s: float = 180, dag_id: str = DAG_ID) -> None:
    """Until the dag-processor has parsed the DAG (the API answers 200 for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if call("GET", f"/api/v2/dags/{dag_id}").status_code == 200:
            return
        time.sleep(2)
    raise TimeoutError(f"the dag-processor did not parse {dag_id} within {timeout_s:.0f} s")


def set_paused(call: Call, paused: bool, dag_id: str = DAG_ID) -> None:
    _checked(
        call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused}),
        f"{'pausing' if paused else 'unpausing'} {dag_id}",
    )


def trigger(call: Call, logical_date: datetime, note: str = "", dag_id: str = DAG_ID) -> str:
    """A run for `logical_date`; returns its run id. When the date already has a run (a second
    demo), that run is cleared and runs again, as re-running a date does in the UI: Airflow keeps
    one run per logical date, and every stage is idempotent."""
    body: dict[str, Any] = {"logical_date": logical_date.isoformat()}
    if note:
        body["note"] = note
    answer = call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
    if answer.status_code == 409 and (existing := run_for_date(call, logical_date, dag_id)):
        _checked(
            call(
                "POST",
                f"/api/v2/dags/{dag_id}/dagRuns/{existing}/clear",
                json={"dry_run": False, "only_failed": False},
            ),
            f"clearing {existing} to run {logical_date.isoformat()} again",
        )
        return existing
    created = _checked(answer, f"triggering {dag_id} for {logical_date.isoformat()}")
    return str(created["dag_run_id"])


def run_for_date(call: Call, logical_date: datetime, dag_id: str = DAG_ID) -> str | None:
    """The run id of the DAG's run for exactly `logical_date`, if there is one."""
    stamp = logical_date.isoformat()
    found = _checked(
        call(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns",
            params={"logical_date_gte": stamp, "logical_date_lte": stamp, "limit": 1},
        ),
        f"looking up the run of {dag_id} for {stamp}",
    )
    runs = found.get("dag_runs") or []
    return str(runs[0]["dag_run_id"]) if runs else None


def task_instances(call: Call, run_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = _checked(
            call(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            ),
            f"listing the task instances of {run_id}",
        )
        found.extend(page["task_instances"])
        if not page["task_instances"] or len(found) >= int(page["total_entries"]):
            return found


def _seconds(ti: dict[str, Any]) -> float | None:
    if ti.get("duration") is not None:
        return float(ti["duration"])
    return None


def task_line(ti: dict[str, Any]) -> str:
    """One finished task: `  transform.staging.stg_erp__customers_run   success    3.1 s`."""
    seconds = _seconds(ti)
    duration = f"{seconds:6.1f} s" if seconds is not None else "      -  "
    label = ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
    return f"  {label:<62} {ti['state']:<16} {duration}"


@dataclass
class Follower:
    """Remembers which task instances it has reported, so each finished one is one line."""

    emit: Callable[[str], None]
    seen: set[tuple[str, int]] = field(default_factory=set)

    def update(self, tis: Iterable[dict[str, Any]]) -> int:
        new = [
            ti
            for ti in tis
            if ti.get("state") in FINISHED
            and (ti["task_id"], int(ti.get("map_index", -1))) not in self.seen
        ]
        new.sort(
            key=lambda ti: (ti.get("end_date") is None, ti.get("end_date") or "", ti["task_id"])
        )
        for ti in new:
            self.seen.add((ti["task_id"], int(ti.get("map_index", -1))))
            self.emit(task_line(ti))
        return len(new)


def follow(
    call: Call,
    run_id: str,
    emit: Callable[[str], None],
    timeout_s: float = 3600,
    poll_s: float = 2.0,
    dag_id: str = DAG_ID,
    alive: Callable[[], None] = lambda: None,
) -> tuple[str, list[dict[str, Any]]]:
    """Poll the run until it finishes, one line per finished task; returns (state, tasks)."""
    follower = Follower(emit)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        run = _checked(call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"), f"run {run_id}")
        tis = task_instances(call, run_id, dag_id)
        follower.update(tis)
        if run["state"] in RUN_FINISHED:
            return str(run["state"]), tis
        time.sleep(poll_s)
    raise TimeoutError(f"{dag_id} run {run_id} did not finish within {timeout_s:.0f} s")


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def stage_spans(tis: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Wall seconds of each stage: its task group's first start to its last end."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for ti in tis:
        start, end = _when(ti.get("start_date")), _when(ti.get("end_date"))
        group = ti["task_id"].split(".", 1)[0]
        if start is None or end is None or group not in STAGES:
            continue
        first, last = spans.get(group, (start, end))
        spans[group] = (min(first, start), max(last, end))
    return {
        f"{stage}_s": round((spans[stage][1] - spans[stage][0]).total_seconds(), 1)
        if stage in spans
        else 0.0
        for stage in STAGES
    }


def run_wall_seconds(run: dict[str, Any]) -> float:
    start, end = _when(run.get("start_date")), _when(run.get("end_date"))
    if start is None or end is None:
        return 0.0
    return round((end - start).total_seconds(), 1)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def overhead_summary(parts: list[dict[str, float]]) -> dict[str, float]:
    """p50/p95 of the overhead, and the p50 of each of its parts."""
    overheads = [part["overhead_s"] for part in parts]
    summary = {
        "task_overhead_p50_s": round(percentile(overheads, 0.5), 2),
        "task_overhead_p95_s": round(percentile(overheads, 0.95), 2),
        "task_overhead_mean_s": round(statistics.fmean(overheads), 2) if overheads else 0.0,
    }
    for name in ("startup_s", "dag_parse_s", "dbt_startup_s", "finish_s"):
        summary[f"{name[:-2]}_p50_s"] = round(percentile([p[name] for p in parts], 0.5), 2)
    return summary


DBT_INVOKED = "Trying to run dbtRunner"


def overhead_from_log(ti: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, float]:
    """Where one task instance's time went, from its task log (Airflow 3's structured events).

    - `startup`: from the try's start to the end of Airflow's "Pre Execute" group (the task
      process starting, the DAG file parsed, `dag_file_parse_ms` in the log), summed over the
      processes of a deferred task;
    - `dbt_startup`: for Cosmos tasks, from the start of execute() to the dbt invocation
      (project copy, profile, dbt imported);
    - `finish`: Airflow's "Post Execute" group to the end of the try (XCom, state);
    - `overhead` = startup + dbt_startup + finish; the rest of the duration is the task's work
      (or, for a deferred sensor, its wait, which is neither).
    """
    start, end = _when(ti.get("start_date")), _when(ti.get("end_date"))
    startup = dbt_startup = finish = 0.0
    segment_start: datetime | None = start
    execute_start: datetime | None = None
    parse_ms = 0.0
    for event in events:
        text = str(event.get("event", ""))
        when = _when(event.get("timestamp"))
        if when is None:
            continue
        if text == "::group::Pre Execute":
            segment_start = when if execute_start is not None or segment_start is None else start
            execute_start = None
        elif text == "::endgroup::" and segment_start is not None and execute_start is None:
            startup += max(0.0, (when - segment_start).total_seconds())
            execute_start, segment_start = when, None
        elif text.startswith(DBT_INVOKED) and execute_start is not None:
            dbt_startup += max(0.0, (when - execute_start).total_seconds())
        elif text == "::group::Post Execute" and end is not None:
            finish = max(0.0, (end - when).total_seconds())
        if "dag_file_parse_ms" in event:
            parse_ms += float(event["dag_file_parse_ms"] or 0)
    return {
        "startup_s": round(startup, 3),
        "dag_parse_s": round(parse_ms / 1000, 3),
        "dbt_startup_s": round(dbt_startup, 3),
        "finish_s": round(finish, 3),
        "overhead_s": round(startup + dbt_startup + finish, 3),
    }


def task_log(call: Call, run_id: str, ti: dict[str, Any], dag_id: str = DAG_ID) -> list[Any]:
    """The structured events of a task instance's latest try, through the REST API."""
    path = (
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
        f"/logs/{max(1, int(ti.get('try_number') or 1))}"
    )
    params = {"full_content": "true", "map_index": ti.get("map_index", -1)}
    answer = call("GET", path, params=params)  # JSON unless text/plain is asked for
    body = _checked(answer, f"the log of {ti['task_id']}")
    content = body.get("content", []) if isinstance(body, dict) else []
    return [event for event in content if isinstance(event, dict)]


def task_overheads(
    call: Call, run_id: str, tis: list[dict[str, Any]], dag_id: str = DAG_ID
) -> dict[str, dict[str, float]]:
    """overhead_from_log for every task instance that ran (not skipped or upstream_failed)."""
    found: dict[str, dict[str, float]] = {}
    for ti in tis:
        if ti.get("start_date") and ti.get("end_date") and ti["state"] in ("success", "failed"):
            found[ti["task_id"]] = overhead_from_log(ti, task_log(call, run_id, ti, dag_id))
    return found
