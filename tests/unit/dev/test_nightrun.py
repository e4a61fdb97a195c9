"""A night through the scheduler as the demo and bench/nightly.py see it: the trigger they send,
one line per finished task while they follow the run, stage spans and task overhead from the
task instances and their logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tieout.config import WEEKDAYS, Validation
from tieout.dev import nightrun


@dataclass
class Answer:
    status_code: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return str(self.body)

    def json(self) -> Any:
        return self.body


class FakeAirflow:
    """Airflow's REST API for one run whose task instances finish one poll after another."""

    def __init__(self, polls: list[list[dict[str, Any]]], run_states: list[str]) -> None:
        self.polls, self.run_states = polls, run_states
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.poll = 0

    def __call__(self, method: str, path: str, **kwargs: Any) -> Answer:
        self.calls.append((method, path, kwargs))
        if method == "POST" and path.endswith("/dagRuns"):
            return Answer(200, {"dag_run_id": "manual__1"})
        if path.endswith("/taskInstances"):
            tis = self.polls[min(self.poll, len(self.polls) - 1)]
            offset = int(kwargs["params"]["offset"])
            if offset == 0:
                self.poll += 1
            return Answer(200, {"task_instances": tis[offset:], "total_entries": len(tis)})
        if "/dagRuns/" in path:
            return Answer(200, {"state": self.run_states[min(self.poll, len(self.run_states) - 1)]})
        return Answer(404, {"detail": "not found"})


def ti(task_id: str, state: str, start: str | None = None, end: str | None = None) -> dict:
    duration = None
    if start and end:
        duration = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return {
        "task_id": task_id,
        "state": state,
        "map_index": -1,
        "start_date": start,
        "end_date": end,
        "duration": duration,
        "try_number": 1,
    }


def test_trigger_posts_the_logical_date_and_returns_the_run_id() -> None:
    api = FakeAirflow([[]], ["queued"])
    when = datetime(2026, 12, 5, 2, tzinfo=UTC)
    assert nightrun.trigger(api, when, note="tieout demo") == "manual__1"
    method, path, kwargs = api.calls[0]
    assert (method, path) == ("POST", "/api/v2/dags/tieout_nightly/dagRuns")
    assert kwargs["json"] == {"logical_date": "2026-12-05T02:00:00+00:00", "note": "tieout demo"}


def test_a_refused_trigger_names_the_request_and_the_answer() -> None:
    def refuse(method: str, path: str, **kwargs: Any) -> Answer:
        if method == "GET":  # no run for that date: the 409 is another conflict
            return Answer(200, {"dag_runs": [], "total_entries": 0})
        return Answer(409, {"detail": "unique constraint violation"})

    with pytest.raises(nightrun.RunFailed, match="triggering tieout_nightly .* HTTP 409"):
        nightrun.trigger(refuse, datetime(2026, 12, 5, 2, tzinfo=UTC))


def test_a_date_that_already_ran_is_cleared_and_runs_again_under_its_run_id() -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def airflow(method: str, path: str, **kwargs: Any) -> Answer:
        calls.append((method, path, kwargs))
        if method == "POST" and path.endswith("/dagRuns"):
            return Answer(409, {"detail": "unique constraint violation"})
        if method == "GET" and path.endswith("/dagRuns"):
            return Answer(200, {"dag_runs": [{"dag_run_id": "manual__earlier"}]})
        if method == "POST" and path.endswith("/clear"):
            return Answer(200, {"task_instances": []})
        return Answer(404, {"detail": "not found"})

    when = datetime(2026, 12, 5, 2, tzinfo=UTC)
    assert nightrun.trigger(airflow, when) == "manual__earlier"
    lookup, clear = calls[1], calls[2]
    assert lookup[2]["params"]["logical_date_gte"] == when.isoformat()
    assert lookup[2]["params"]["logical_date_lte"] == when.isoformat()
    assert clear[:2] == ("POST", "/api/v2/dags/tieout_nightly/dagRuns/manual__earlier/clear")
    assert clear[2]["json"] == {"dry_run": False, "only_failed": False}


def test_follow_prints_each_finished_task_once_and_returns_the_final_state() -> None:
    first = [
        ti("prepare_warehouse", "success", "2026-12-05T02:00:00", "2026-12-05T02:00:03"),
        ti("extract.erp__customers", "running", "2026-12-05T02:00:04"),
    ]
    second = [
        first[0],
        ti("extract.erp__customers", "failed", "2026-12-05T02:00:04", "2026-12-05T02:00:06"),
        ti("transform.models.staging.erp.stg_erp__customers.run", "upstream_failed"),
    ]
    api = FakeAirflow([first, second, second], ["running", "running", "failed"])
    lines: list[str] = []
    state, tis = nightrun.follow(api, "manual__1", lines.append, poll_s=0)
    assert state == "failed"
    assert len(tis) == 3
    assert [line.split()[0] for line in lines] == [
        "prepare_warehouse",
        "extract.erp__customers",
        "transform.models.staging.erp.stg_erp__customers.run",
    ]
    assert lines[0].split()[1:] == ["success", "3.0", "s"]
    assert lines[1].split()[1:] == ["failed", "2.0", "s"]
    assert lines[2].split()[1:] == ["upstream_failed", "-"]


def test_follow_gives_up_after_its_timeout() -> None:
    api = FakeAirflow([[ti("prepare_warehouse", "running", "2026-12-05T02:00:00")]], ["running"])
    with pytest.raises(TimeoutError, match="did not finish within 0 s"):
        nightrun.follow(api, "manual__1", lambda line: None, timeout_s=0, poll_s=0)


def test_task_instances_pages_through_the_api() -> None:
    many = [ti(f"extract.s{i}", "success") for i in range(230)]
    api = FakeAirflow([many], ["success"])
    real = api.__call__

    def paged(method: str, path: str, **kwargs: Any) -> Answer:
        answer = real(method, path, **kwargs)
        if path.endswith("/taskInstances"):
            answer.body["task_instances"] = answer.body["task_instances"][:100]
        return answer

    assert len(nightrun.task_instances(paged, "manual__1")) == 230


def test_stage_spans_are_each_groups_first_start_to_last_end() -> None:
    tis = [
        ti("extract.a", "success", "2026-12-05T02:00:00+00:00", "2026-12-05T02:00:10+00:00"),
        ti("extract.b", "success", "2026-12-05T02:00:05+00:00", "2026-12-05T02:00:30+00:00"),
        ti(
            "transform.models.x.run",
            "success",
            "2026-12-05T02:00:31+00:00",
            "2026-12-05T02:01:01+00:00",
        ),
        ti("report.drift_report", "skipped"),
    ]
    spans = nightrun.stage_spans(tis)
    assert spans["extract_s"] == 30.0
    assert spans["transform_s"] == 30.0
    assert spans["report_s"] == 0.0
    assert set(spans) == {f"{stage}_s" for stage in nightrun.STAGES}


def test_percentiles_by_nearest_rank() -> None:
    assert nightrun.percentile([], 0.5) == 0.0
    assert nightrun.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert nightrun.percentile([float(i) for i in range(1, 101)], 0.95) == 95.0


def event(at: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-12-05T02:00:{at}Z", "event": text, **extra}


def test_overhead_is_startup_dbt_startup_and_finish_from_the_task_log() -> None:
    dbt_task = ti(
        "transform.x", "success", "2026-12-05T02:00:00+00:00", "2026-12-05T02:00:20+00:00"
    )
    events = [
        event("00.100", "::group::Pre Execute"),
        event("01.500", "Worker startup parse complete", dag_file_parse_ms=1200),
        event("02.000", "::endgroup::"),
        event("05.000", "Trying to run dbtRunner with: ['build']"),
        event("19.000", "::group::Post Execute"),
        event("19.500", "::endgroup::"),
    ]
    parts = nightrun.overhead_from_log(dbt_task, events)
    assert parts == {
        "startup_s": 2.0,
        "dag_parse_s": 1.2,
        "dbt_startup_s": 3.0,
        "finish_s": 1.0,
        "overhead_s": 6.0,
    }


def test_a_deferred_tasks_wait_is_not_overhead() -> None:
    sensor = ti(
        "transform.x.run", "success", "2026-12-05T02:00:00+00:00", "2026-12-05T02:00:50+00:00"
    )
    events = [
        event("00.000", "::group::Pre Execute"),
        event("01.000", "::endgroup::"),
        event("01.100", "Pausing task as DEFERRED."),
        event("40.000", "::group::Pre Execute"),
        event("41.500", "::endgroup::"),
        event("49.000", "::group::Post Execute"),
    ]
    parts = nightrun.overhead_from_log(sensor, events)
    assert parts["startup_s"] == 2.5
    assert parts["finish_s"] == 1.0
    assert parts["overhead_s"] == 3.5


def test_the_demo_nights_have_distinct_logical_dates_at_the_schedule_time() -> None:
    first, second = nightrun.night_dates(datetime(2026, 12, 6, 14, 30, tzinfo=UTC))
    assert first == datetime(2026, 12, 5, 2, tzinfo=UTC)
    assert second == datetime(2026, 12, 6, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 7, 0, 9, tzinfo=UTC), datetime(2026, 12, 7, 1, 59, 59, tzinfo=UTC)],
)
def test_before_the_schedule_time_the_demo_nights_are_the_two_that_have_passed(
    now: datetime,
) -> None:
    # today's 02:00 is still to come: a run for it would be created and never start a task
    first, second = nightrun.night_dates(now)
    assert second == datetime(2026, 12, 6, 2, tzinfo=UTC) < now
    assert first == datetime(2026, 12, 5, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "second"),
    [
        # Monday 2026-12-07 validates whole tables: the nights are Saturday and Sunday
        (datetime(2026, 12, 7, 3, 12, tzinfo=UTC), datetime(2026, 12, 6, 2, tzinfo=UTC)),
        # Tuesday: Monday is the first night, Tuesday the second
        (datetime(2026, 12, 8, 9, 0, tzinfo=UTC), datetime(2026, 12, 8, 2, tzinfo=UTC)),
    ],
)
def test_the_second_night_is_one_that_validates_changed_rows(
    now: datetime, second: datetime
) -> None:
    whole_tables_on = Validation(full_suites_on=["monday"]).full_on
    assert nightrun.night_dates(now, whole_tables_on) == (second - timedelta(days=1), second)


def test_when_every_night_validates_whole_tables_the_nights_are_the_last_two() -> None:
    every_day = Validation(full_suites_on=list(WEEKDAYS)).full_on
    now = datetime(2026, 12, 7, 3, 12, tzinfo=UTC)
    assert nightrun.night_dates(now, every_day) == nightrun.night_dates(now)


def test_at_the_schedule_time_the_demo_runs_that_night() -> None:
    assert nightrun.night_dates(datetime(2026, 12, 7, 2, tzinfo=UTC))[1] == datetime(
        2026, 12, 7, 2, tzinfo=UTC
    )
