"""Airflow runs the nightly DAG with the CRM answering 500 to everything: the CRM's extract tasks
fail after their retries, `extract.outcome` records them, and the rest of the night, drift report
included, succeeds with the failure named at the report's top and in `tieout summary`.

The demo prepares everything (warehouse, sandbox, Airflow's metadata, pools, two good nights);
then the CRM goes down and one more night runs as the demo runs its nights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tieout.db import embedded
from tieout.extract import plan
from tieout_sandbox import server

from .tieout_cli import free_base_port, free_port, tieout

# the demo (two nights) and a third night through Airflow: past the suite's 900 s default on two
# busy cores (15 min measured for the demo alone)
pytestmark = pytest.mark.timeout(3000)


@pytest.fixture(scope="module")
def demo_done(
    tmp_path_factory: pytest.TempPathFactory,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
    output_dir: Path,
):
    state = tmp_path_factory.mktemp("outage-airflow-state")
    env = {
        **os.environ,
        "TIEOUT_STATE_DIR": str(state),
        "TIEOUT_EMBEDDED_PORT": str(free_port()),
        "TIEOUT_SANDBOX_BASE_PORT": str(free_base_port(18700)),
    }
    for name in ("TIEOUT_DATABASE_URL", "TIEOUT_AIRFLOW_DATABASE_URL"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("AIRFLOW_CONN_TIEOUT_WAREHOUSE")]:
        env.pop(name)
    log = output_dir / "outage-airflow.log"
    log.write_text("")
    try:
        tieout(env, log, "demo")
        yield env, log
    finally:
        with scoped_env({"TIEOUT_STATE_DIR": str(state)}):
            server.down(state / "sandbox")
            embedded.stop()


def airflow(env: dict[str, str], log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    with log.open("a") as handle:
        handle.write(f"$ tieout airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    return result


def test_the_crm_down_all_night_fails_only_its_tasks(demo_done) -> None:
    env, log = demo_done
    tieout(env, log, "sandbox", "fault", "crm", "outage_status=500")
    night = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    try:
        airflow(env, log, "dags", "test", "tieout_nightly", night)
    finally:
        tieout(env, log, "sandbox", "fault", "crm", "outage_status=0")

    summary = json.loads(tieout(env, log, "summary", "--json"))
    run_id = summary["run_id"]  # the newest run: this one (Airflow names it by its start)
    states = airflow(
        env, log, "tasks", "states-for-dag-run", "tieout_nightly", run_id, "--output", "json"
    )
    assert states.returncode == 0, states.stderr[-3000:]
    by_task = {row["task_id"]: row["state"] for row in json.loads(states.stdout)}
    crm = {f"extract.crm__{stream}" for source, stream in plan.streams() if source == "crm"}
    assert {by_task[t] for t in crm} == {"failed"}, by_task
    for task_id in (
        "extract.outcome",
        "transform_summary",
        "reconcile.findings",
        "reverse_etl.write_back",
        "report.drift_report",
        "integration_health",
    ):
        assert by_task[task_id] == "success", (task_id, by_task)
    others = {t: s for t, s in by_task.items() if t.startswith("extract.") and t not in crm}
    assert set(others.values()) == {"success"}, others

    failed = {f"{f['source']}.{f['stream']}": f for f in summary["failed_streams"]}
    assert set(failed) == {t.removeprefix("extract.").replace("__", ".") for t in crm}
    assert all("500" in f["error"] for f in failed.values())
    html = Path(summary["stages"]["report"]["html"]).read_text()
    top = html[: html.index('id="what-to-do"')]
    assert 'id="source-failures"' in top and 'data-source="crm"' in top
    text = tieout(env, log, "summary")
    assert all(f"FAILED       {name} " in text for name in failed)
