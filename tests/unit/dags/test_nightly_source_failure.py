"""A failing source does not take the night down, and nothing else fails silently.

The nightly DAG is parsed as the dag-processor parses it, and its task states are then worked out
from its own wiring and trigger rules, the way Airflow's scheduler decides them: a failed extract
stream leaves only itself red and transform, validate, reconcile, reverse ETL, the report and
health run; a failed dbt model or a failed validation still stops reconcile, reverse ETL and the
report; a failed prepare stops the night at `extract.outcome` (which fails when no stream loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tieout.extract import plan

ROOT = Path(__file__).resolve().parents[3]
OUTCOME = "extract.outcome"

DESCRIBE = """{
    t.task_id: {
        "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
        "upstream": sorted(t.upstream_task_ids),
        "downstream": sorted(t.downstream_task_ids),
        "retries": t.retries,
        "retry_delay_s": t.retry_delay.total_seconds(),
        "exponential": bool(t.retry_exponential_backoff),
    }
    for t in dag.tasks
}"""

DONE = {"success", "failed", "upstream_failed", "skipped"}
FAILED = {"failed", "upstream_failed"}


@pytest.fixture(scope="module")
def tasks(parse_dags: Callable[..., dict]) -> dict[str, dict]:
    parsed = parse_dags(ROOT / "dags" / "tieout_nightly.py", DESCRIBE)
    assert parsed["errors"] == {}
    return parsed["dags"]["tieout_nightly"]


def run_night(tasks: dict[str, dict], failing: Callable[[str], bool]) -> dict[str, str]:
    """Every task's final state when the tasks `failing` names fail (after their retries) and
    every other task that runs succeeds; `extract.outcome` fails when no stream succeeded, as
    tieout.extract.outcome.record does. Trigger rules as Airflow's scheduler applies them."""
    state: dict[str, str] = {}
    while len(state) < len(tasks):
        progressed = False
        for task_id, task in tasks.items():
            if task_id in state:
                continue
            ups = [state.get(u) for u in task["upstream"]]
            if any(u not in DONE for u in ups):
                continue
            rule = task["trigger_rule"]
            if rule == "all_success":
                if any(u in FAILED for u in ups):
                    decided = "upstream_failed"
                elif any(u == "skipped" for u in ups):
                    decided = "skipped"
                else:
                    decided = "run"
            elif rule == "none_failed":
                decided = "upstream_failed" if any(u in FAILED for u in ups) else "run"
            elif rule == "all_done":
                decided = "run"
            else:
                raise AssertionError(f"{task_id}: trigger rule {rule!r} is not modelled here")
            if decided == "run":
                if task_id == OUTCOME:
                    decided = "success" if "success" in ups else "failed"
                else:
                    decided = "failed" if failing(task_id) else "success"
            state[task_id] = decided
            progressed = True
        assert progressed, "the DAG has a cycle or a task waits on a missing upstream"
    return state


def crm_stream(task_id: str) -> bool:
    return task_id.startswith("extract.crm__")


def test_the_outcome_step_follows_every_stream_whatever_their_state(tasks) -> None:
    streams = {f"extract.{source}__{stream}" for source, stream in plan.streams()}
    assert tasks[OUTCOME]["trigger_rule"] == "all_done"
    assert set(tasks[OUTCOME]["upstream"]) == streams
    for stream in streams:
        assert tasks[stream]["downstream"] == [OUTCOME], stream
        assert tasks[stream]["retries"] >= 1, "a stream's task still retries before it fails"
        # a source down all night holds the night for its retries only: no minutes of backoff
        assert tasks[stream]["retry_delay_s"] <= 15 and not tasks[stream]["exponential"]
    # dbt starts only from the outcome: no stream feeds a later task directly
    after = {t for t in tasks[OUTCOME]["downstream"]}
    assert after and all(t.startswith("transform") for t in after), after


def test_a_failed_source_leaves_the_rest_of_the_night_running(tasks) -> None:
    state = run_night(tasks, crm_stream)
    crm = [t for t in tasks if crm_stream(t)]
    assert crm and all(state[t] == "failed" for t in crm)
    red = sorted(t for t, s in state.items() if s != "success")
    assert red == sorted(crm), "only the CRM's own tasks are not successful"
    for task_id in (
        OUTCOME,
        "transform_summary",
        "reconcile.findings",
        "reverse_etl.write_back",
        "report.drift_report",
        "integration_health",
    ):
        assert state[task_id] == "success", task_id
    assert any(t.startswith("validate") for t in tasks)
    assert all(s == "success" for t, s in state.items() if t.startswith(("validate", "transform")))


def test_a_failed_dbt_model_still_stops_reconcile_and_the_report(tasks) -> None:
    model = next(t for t in tasks if t.startswith("transform.") and tasks[t]["upstream"])
    state = run_night(tasks, lambda t: t == model)
    assert state[model] == "failed"
    for task_id in ("reconcile.findings", "reverse_etl.write_back", "report.drift_report"):
        assert state[task_id] == "upstream_failed", task_id
    assert state["integration_health"] == "success", "health judges the sources all the same"


def test_a_failed_validation_still_stops_reconcile_and_the_report(tasks) -> None:
    suites = [t for t in tasks if t.startswith("validate.")]
    state = run_night(tasks, lambda t: t == suites[0])
    for task_id in ("reconcile.findings", "reverse_etl.write_back", "report.drift_report"):
        assert state[task_id] == "upstream_failed", task_id


def test_a_source_failure_together_with_a_dbt_failure_is_not_masked(tasks) -> None:
    model = next(t for t in tasks if t.startswith("transform.") and tasks[t]["upstream"])
    state = run_night(tasks, lambda t: crm_stream(t) or t == model)
    assert state["report.drift_report"] == "upstream_failed"


def test_a_failed_prepare_stops_the_night_at_the_outcome(tasks) -> None:
    state = run_night(tasks, lambda t: t == "prepare_warehouse")
    assert all(state[t] == "upstream_failed" for t in tasks[OUTCOME]["upstream"])
    assert state[OUTCOME] == "failed"
    assert state["reconcile.findings"] == "upstream_failed"
    assert state["report.drift_report"] == "upstream_failed"


def test_every_source_failing_stops_the_night_at_the_outcome(tasks) -> None:
    state = run_night(tasks, lambda t: t.startswith("extract.") and t != OUTCOME)
    assert state[OUTCOME] == "failed"
    assert state["report.drift_report"] == "upstream_failed"
