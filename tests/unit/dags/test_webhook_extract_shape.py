"""tieout_extract_<source>: one per source with a webhook block, a task per stream in the
source's pool, no schedule, one active run; a stream the run did not ask for is skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tieout import orchestration

ROOT = Path(__file__).resolve().parents[3]

DUMP = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    dag_id: {
        "schedule": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "tasks": {t.task_id: t.pool for t in dag.tasks},
    }
    for dag_id, dag in bag.dags.items()
}))
"""


def test_one_extract_only_dag_per_webhook_source() -> None:
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(ROOT / ".tieout" / "airflow-policy"),
    }
    result = subprocess.run(
        [sys.executable, "-c", DUMP, str(ROOT / "dags" / "tieout_webhook_extract.py")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dags = json.loads(result.stdout.strip().splitlines()[-1])
    assert dags == {
        "tieout_extract_billing": {
            "schedule": "NullTimetable",
            "max_active_runs": 1,
            "tasks": {
                "customers": "source_billing",
                "invoices": "source_billing",
                "payments": "source_billing",
            },
        }
    }


def test_a_stream_the_run_did_not_ask_for_is_skipped() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="invoices only"):
        orchestration.extract_requested("billing", "customers", "r1", {"streams": ["invoices"]})
