"""tieout_extract_<source>: one per source with a webhook block, a task per stream in the
source's pool, no schedule, one active run; a stream the run did not ask for is skipped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tieout import orchestration
from tieout.config import load_config

ROOT = Path(__file__).resolve().parents[3]

DESCRIBE = """{
    "schedule": type(dag.timetable).__name__,
    "max_active_runs": dag.max_active_runs,
    "tasks": {t.task_id: t.pool for t in dag.tasks},
}"""


def test_one_extract_only_dag_per_webhook_source(parse_dags: Callable[..., dict]) -> None:
    parsed = parse_dags(ROOT / "dags" / "tieout_webhook_extract.py", DESCRIBE)
    assert parsed["errors"] == {}
    pushing = [source for source in load_config().sources.values() if source.webhook]
    assert pushing, "no source has a webhook block"
    assert parsed["dags"] == {
        f"tieout_extract_{source.name}": {
            "schedule": "NullTimetable",
            "max_active_runs": 1,
            "tasks": {stream.name: f"source_{source.name}" for stream in source.streams},
        }
        for source in pushing
    }


def test_a_stream_the_run_did_not_ask_for_is_skipped() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="invoices only"):
        orchestration.extract_requested("billing", "customers", "r1", {"streams": ["invoices"]})
