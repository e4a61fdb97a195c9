"""A night as production runs it: Airflow's api-server, scheduler, dag-processor and triggerer as
local processes (LocalExecutor, tieout.dev.cluster), tieout_nightly triggered through the REST API
and followed task by task (tieout.dev.nightrun). The run has real start and end times and a task
log for every task; the grid groups dbt by layer with each model's tests beside it. Saves a real
Chromium screenshot of the grid with a dbt model's task log open (test-output/).

Then a second night with the CRM answering 500 to everything, through the same scheduler: the
CRM's extract tasks fail, the rest of the night runs, the other sources' findings are there, the
CRM's are marked stale, and the drift report names the failed streams at its top.
(tests/integration/test_source_outage.py checks that night's findings one by one.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tieout.dev import cluster as tieout_cluster
from tieout.dev import local_airflow, nightrun

from .airflow_pages import sign_in, wait_for_text

MODEL_TASK = "transform.models.staging.erp.stg_erp__customers.run"


@pytest.fixture(scope="module")
def metadata_url(new_database: Callable[[str], ContextManager[str]]) -> Iterator[str]:
    with new_database("airflow_local") as url:
        parts = urlsplit(url)
        yield urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, parts.query, ""))


@pytest.fixture(scope="module")
def sandbox_up(
    tmp_path_factory: pytest.TempPathFactory,
    new_warehouse: Callable[[str], ContextManager[str]],
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
) -> Iterator[Path]:
    """A sandbox, state folder and warehouse of this module's own (its CRM outage stays here)."""
    from tieout.transform.stage import parse_manifest
    from tieout_sandbox import SYSTEMS, generate, server

    folder = tmp_path_factory.mktemp("scheduler-sandbox")
    generate.seed(folder, 0.2, 13, generate.DEFAULT_AS_OF)
    server.up(folder, ports=dict(zip(SYSTEMS, server.free_ports(4), strict=True)))
    state = tmp_path_factory.mktemp("scheduler-state")
    with new_warehouse("tieout_scheduler") as url:
        env = {"TIEOUT_SANDBOX_DIR": str(folder), "TIEOUT_STATE_DIR": str(state)}
        with scoped_env({**env, "TIEOUT_DATABASE_URL": url}):
            parse_manifest()
            yield folder
            server.down(folder)


@pytest.fixture(scope="module")
def local_cluster(
    tmp_path_factory: pytest.TempPathFactory, metadata_url: str, sandbox_up: Path
) -> Iterator[tieout_cluster.Cluster]:
    home = tmp_path_factory.mktemp("scheduler-airflow")
    running = tieout_cluster.start_cluster(
        home, None, metadata_url, schedule=False, executor="LocalExecutor"
    )
    yield running
    running.stop()


def run_night(
    cluster: tieout_cluster.Cluster, day: int, tasks_file: Path
) -> tuple[str, str, list[dict]]:
    """Trigger the night of 2026-12-<day>, follow it, and write its task lines to `tasks_file`."""
    run_id = nightrun.trigger(cluster.call, datetime(2026, 12, day, 2, tzinfo=UTC), note="e2e")
    lines: list[str] = []
    state, tis = nightrun.follow(
        cluster.call, run_id, lines.append, timeout_s=1500, alive=cluster.check_alive
    )
    tasks_file.write_text("\n".join(nightrun.task_line(ti) for ti in tis))
    return state, run_id, tis


@pytest.fixture(scope="module")
def night(local_cluster: tieout_cluster.Cluster, output_dir: Path) -> tuple[str, str, list[dict]]:
    nightrun.wait_for_dag(local_cluster.call)
    nightrun.set_paused(local_cluster.call, False)
    return run_night(local_cluster, 5, output_dir / "scheduler-night-tasks.txt")


@pytest.fixture(scope="module")
def crm_down_night(
    local_cluster: tieout_cluster.Cluster, sandbox_up: Path, night, output_dir: Path
) -> tuple[str, str, list[dict]]:
    """The next night, with the CRM answering 500 to every request (token endpoint too)."""
    from tieout_sandbox import server

    server.set_faults("crm", sandbox_up, outage_status=500)
    try:
        return run_night(local_cluster, 6, output_dir / "scheduler-crm-down-tasks.txt")
    finally:
        server.set_faults("crm", sandbox_up, outage_status=0)


def test_the_night_runs_through_the_scheduler_with_logs_and_real_times(
    local_cluster: tieout_cluster.Cluster, night
) -> None:
    import psycopg

    from tieout import db

    state, run_id, tis = night
    assert state == "success", [t["task_id"] for t in tis if t["state"] != "success"]
    run = local_cluster.call("GET", f"/api/v2/dags/tieout_nightly/dagRuns/{run_id}").json()
    assert run["logical_date"].startswith("2026-12-05T02:00:00")
    # real start and end: the run took minutes, not the day since its logical date
    assert 0 < nightrun.run_wall_seconds(run) < 3600
    # the run's logical date reached dbt (Cosmos renders it into TIEOUT_AS_OF_DATE)
    with psycopg.connect(db.warehouse_url()) as conn:
        dates = conn.execute("select distinct as_of_date from finance.receivables_aging").fetchall()
    assert dates == [(date(2026, 12, 5),)]
    model = next(ti for ti in tis if ti["task_id"] == MODEL_TASK)
    events = nightrun.task_log(local_cluster.call, run_id, model)
    text = "\n".join(str(e.get("event", "")) for e in events)
    assert "Worker startup parse complete" in text
    assert "stg_erp__customers" in text
    overheads = nightrun.task_overheads(local_cluster.call, run_id, tis)
    assert len(overheads) >= len([t for t in tis if t["state"] == "success"]) - 1
    assert all(parts["overhead_s"] >= 0 for parts in overheads.values())


def test_grid_screenshot_with_a_model_log_open(
    local_cluster: tieout_cluster.Cluster, night, browser, output_dir: Path
) -> None:
    _, run_id, _ = night
    sign_in(browser, local_cluster.api, local_airflow.ADMIN_USER, local_airflow.admin_password())
    browser.get(
        f"{local_cluster.api}/dags/tieout_nightly/runs/{quote(run_id, safe='')}"
        f"/tasks/{quote(MODEL_TASK)}"
    )
    # the model task's own lines: it read its model's status from the dbt build
    wait_for_text(browser, "model__tieout__stg_erp__customers_status", timeout_s=120)
    time.sleep(3)  # the grid beside the log renders after the log
    browser.save_screenshot(str(output_dir / "scheduler-grid-task-log.png"))
    page = browser.find_element("tag name", "body").text
    assert "stg_erp__customers" in page
    assert "Logs" in page
    assert "transform" in page, page[:2000]


def test_a_night_with_the_crm_down_goes_on_through_the_scheduler(crm_down_night) -> None:
    import psycopg

    from tieout import db
    from tieout.config import load_config
    from tieout.paths import state_dir

    _, run_id, tis = crm_down_night
    states = {ti["task_id"]: ti["state"] for ti in tis}
    crm = {t for t in states if t.startswith("extract.crm__")}
    assert crm and {states[t] for t in crm} == {"failed"}, states
    # everything else ran: the other sources, dbt, validation, reconcile, reverse ETL, report
    others = {t: s for t, s in states.items() if t not in crm}
    assert {t: s for t, s in others.items() if s != "success"} == {}
    with psycopg.connect(db.warehouse_url()) as conn:
        failures = conn.execute(
            "select source, stream, error from ops.source_failures where run_id = %s", (run_id,)
        ).fetchall()
        unresolved = conn.execute(
            """select kind, entity, system, coalesce(field, ''), stale_since is not null
               from recon.findings where status <> 'resolved'"""
        ).fetchall()
    assert {f"extract.{source}__{stream}" for source, stream, _ in failures} == crm
    assert all("500" in error for _, _, error in failures), failures
    # the CRM's findings are kept as last seen and marked stale, and so is every finding whose
    # canonical value comes from the CRM; the other sources' findings are there, fresh
    entities = load_config().entities

    def depends_on_crm(kind: str, entity: str, system: str, field: str) -> bool:
        spec = entities[entity]
        return (
            system == "crm"
            or (field in spec.fields and spec.fields[field].source_of_truth == "crm")
            or (kind in ("missing_in_system", "extra_in_system") and spec.master == "crm")
        )

    assert [row for row in unresolved if row[2] == "crm" and not row[4]] == []
    assert [row for row in unresolved if row[4] and not depends_on_crm(*row[:4])] == []
    fresh = [row for row in unresolved if row[2] != "crm" and not row[4]]
    assert len(fresh) > 10, unresolved[:20]
    report = state_dir() / "reports" / run_id / "drift_report.html"
    top = report.read_text()[:20000]
    assert 'id="source-failures"' in top
    for task in crm:
        source, stream = task.removeprefix("extract.").split("__")
        assert f'data-source="{source}" data-stream="{stream}"' in top
