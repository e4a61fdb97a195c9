"""The Drift reports page lists every night: complete, partial (a source failed to extract and
the night went on), failed (a later stage failed, or the night stopped before its report)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tieout.report.page import night_state, render_runs

AT = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
CRM = {
    "source": "crm",
    "stream": "contacts",
    "status": "failed",
    "error": "token request answered HTTP 500",
    "failing_since": "2026-12-05T02:00:01+00:00",
    "failing_since_run_id": "scheduled__2026-12-05",
}


def night(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": "scheduled__2026-12-06",
        "at": AT,
        "reconciled_at": AT,
        "open_findings": 10,
        "new_findings": 0,
        "resolved_findings": 1,
        "waived_findings": 0,
        "money_at_stake": {"EUR": 5.0},
        "alert_status": "ok",
        "alerts": [],
        "report_html": "/reports/x/drift_report.html",
        "stale_sources": [],
        "stale_findings": 0,
        "running": False,
        "failed_stages": [],
        "stages": ["prepare", "extract", "transform", "validate", "reconcile", "report"],
    }
    row.update(values)
    return row


def test_states_of_a_night() -> None:
    assert night_state(night()) == ("complete", [])
    partial = night(stale_sources=[CRM], failed_stages=["extract", "extract:crm.contacts"])
    assert night_state(partial) == ("partial", ["extract:crm.contacts"])
    broken = night(failed_stages=["extract:crm.contacts", "validate"], stale_sources=[CRM])
    assert night_state(broken) == ("failed", ["extract:crm.contacts", "validate"])
    stopped = night(reconciled_at=None, report_html=None, stages=["prepare", "extract"])
    assert night_state(stopped) == ("failed", ["stopped after extract: see the run in Airflow"])
    assert night_state(night(running=True))[0] == "running"


def test_the_page_shows_a_partial_night_with_its_failing_stream_and_a_stopped_one() -> None:
    partial = night(stale_sources=[CRM], failed_stages=["extract:crm.contacts"])
    partial["state"], partial["failing"] = night_state(partial)
    stopped = night(
        run_id="scheduled__2026-12-05",
        reconciled_at=None,
        report_html=None,
        open_findings=None,
        new_findings=None,
        resolved_findings=None,
        money_at_stake=None,
        alert_status=None,
        stages=["prepare", "extract", "transform"],
        failed_stages=["transform"],
    )
    stopped["state"], stopped["failing"] = night_state(stopped)
    page = render_runs([partial, stopped], [])
    assert 'data-run="scheduled__2026-12-06" data-state="partial"' in page
    assert "extract:crm.contacts: token request answered HTTP 500" in page
    assert "since run scheduled__2026-12-05" in page
    assert 'data-run="scheduled__2026-12-05" data-state="failed"' in page
    assert "started 2026-12-06 02:00" in page and "not built" in page


def test_the_summary_names_each_failed_stream_and_its_error() -> None:
    from tieout.runs import format_summary

    lines = format_summary(
        {
            "run_id": "scheduled__2026-12-06",
            "stages": {"extract": {"status": "failed", "streams": 9, "failed": 1}},
            "failed_streams": [CRM],
        }
    )
    assert lines[-1] == (
        "  FAILED       crm.contacts (failed): token request answered HTTP 500 "
        "[failing since run scheduled__2026-12-05]"
    )
