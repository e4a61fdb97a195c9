"""`make demo`: the whole product on this machine, from an empty folder to a drift report.

The nights run the way production runs them: Airflow's api-server, scheduler, dag-processor and
triggerer start as local processes (LocalExecutor, metadata on the embedded PostgreSQL), each
night is triggered through the REST API for its own logical date and followed task by task, and
the processes stop at the end. The scheduler runs without its job schedule, so it runs only the
nights the demo triggers, and the DAG is left paused: nothing runs afterwards unless asked.

Each step is idempotent, so a second demo reuses what the first built and is faster.
It never touches a configured (non-embedded) warehouse's data beyond what the DAG does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tieout.config import load_validation
from tieout.dev import local_airflow, nightrun
from tieout.paths import airflow_home, state_dir

Step = tuple[str, Callable[[], str | None]]


def airflow(*args: str, env: dict[str, str], log: Path) -> None:
    binary = os.path.join(os.path.dirname(sys.executable), "airflow")
    with log.open("a") as handle:
        handle.write(f"\n$ airflow {' '.join(args)}\n")
        handle.flush()
        result = subprocess.run(
            [binary, *args], env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise click.ClickException(f"airflow {' '.join(args)} failed (log: {log}):\n{tail}")


class Progress:
    """The step lines; a step that prints lines of its own (a night's tasks) gets its title
    again on the line that says it is done."""

    def __init__(self) -> None:
        self.open_line = False

    def say(self, line: str) -> None:
        if self.open_line:
            click.echo("")
            self.open_line = False
        click.echo(line)


def run_steps(steps: list[Step], progress: Progress | None = None) -> None:
    progress = progress or Progress()
    total = len(steps)
    for number, (title, action) in enumerate(steps, start=1):
        click.echo(f"[{number}/{total}] {title} ...", nl=False)
        progress.open_line = True
        started = time.monotonic()
        note = action()
        elapsed = time.monotonic() - started
        done = f" done in {elapsed:.1f} s" + (f" ({note})" if note else "")
        if progress.open_line:
            click.echo(done)
        else:
            click.echo(f"[{number}/{total}] {title} ...{done}")
        progress.open_line = False


def _start_warehouse() -> str:
    from tieout import db
    from tieout.db import migrate

    url = db.warehouse_url()
    applied = migrate.migrate()
    return f"{db.redact(url)}, {len(applied)} migrations applied"


def _migrate_airflow(env: dict[str, str], log: Path) -> str:
    import airflow

    stamp = airflow_home() / ".migrated"
    from tieout import db

    # the stamp names the database, never its password
    wanted = f"{airflow.__version__} {db.redact(env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'])}"
    if stamp.exists() and stamp.read_text() == wanted:
        return "already at head"
    airflow_cmd("db", "migrate", env=env, log=log)
    stamp.write_text(wanted)
    return "metadata migrated"


airflow_cmd = airflow


def _start_sandbox() -> str:
    from tieout_sandbox import datadir, generate, server

    folder = datadir.data_dir()
    note = "reusing seeded data"
    if not datadir.ground_truth_path(folder).exists():
        scale = float(os.environ.get("TIEOUT_DEMO_SCALE", "1"))
        generate.seed(folder, scale, 42, generate.DEFAULT_AS_OF)
        note = f"seeded at scale {scale:g}"
    server.up(folder)
    return note + f", ground truth in {datadir.ground_truth_path(folder)}"


def _dbt_docs() -> str:
    from tieout.transform.stage import generate_docs

    return str(generate_docs())


def _mutate_once() -> str:
    """One day of change in the sandbox, applied once, so a repeated demo changes nothing."""
    from tieout_sandbox import datadir, mutate

    folder = datadir.data_dir()
    if datadir.read_json(datadir.state_path(folder)).get("days_mutated", 0) >= 1:
        return "already applied"
    mutate.mutate(folder, 1)
    return "new customers, orders, payments, updates and some new divergence"


def _parse_dbt() -> str:
    from tieout.transform.stage import parse_manifest

    return f"manifest {parse_manifest()}"


def _create_pools(env: dict[str, str], log: Path) -> str:
    pools = local_airflow.sync_pools(env)
    return ", ".join(f"{name}={slots}" for name, slots in pools.items())


@dataclass
class Scheduler:
    """The demo's Airflow processes, started by one step and stopped at the end."""

    cluster: Any = None

    def start(self) -> str:
        from tieout.dev import cluster as airflow_cluster

        self.cluster = airflow_cluster.start_cluster(
            airflow_home(),
            None,
            local_airflow.metadata_url(),
            schedule=False,
            executor="LocalExecutor",
            migrate=False,
        )
        nightrun.wait_for_dag(self.cluster.call)
        nightrun.set_paused(self.cluster.call, False)
        return f"api-server at {self.cluster.api}, LocalExecutor"

    def night(self, logical_date: datetime, say: Callable[[str], None]) -> str:
        run_id = nightrun.trigger(self.cluster.call, logical_date, note="tieout demo")
        state, tis = nightrun.follow(self.cluster.call, run_id, say, alive=self.cluster.check_alive)
        wall = nightrun.run_wall_seconds(
            self.cluster.call("GET", f"/api/v2/dags/{nightrun.DAG_ID}/dagRuns/{run_id}").json()
        )
        if state != "success":
            failed = [ti["task_id"] for ti in tis if ti["state"] in ("failed", "upstream_failed")]
            raise click.ClickException(
                f"tieout_nightly {run_id} ended {state}; failed: {', '.join(failed[:10])} "
                f"(task logs in the UI: tieout ui, or under {airflow_home() / 'logs'})"
            )
        return (
            f"{run_id}, logical date {logical_date:%Y-%m-%d %H:%M} UTC, {len(tis)} tasks, {wall} s"
        )

    def stop(self) -> str:
        if self.cluster is None:
            return "not started"
        try:
            nightrun.set_paused(self.cluster.call, True)
        finally:
            self.cluster.stop()
        return "tieout_nightly paused; api-server, scheduler, dag-processor, triggerer stopped"


def run() -> dict[str, Any]:
    log_dir = state_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "demo.log"
    env: dict[str, str] = {}
    first_night, second_night = nightrun.night_dates(datetime.now(UTC), load_validation().full_on)
    progress = Progress()
    scheduler = Scheduler()

    def prepare_env() -> str:
        env.update(local_airflow.environment())
        return f"AIRFLOW_HOME={airflow_home()}"

    steps: list[Step] = [
        ("starting the warehouse (embedded PostgreSQL unless configured)", _start_warehouse),
        ("seeding and starting the sandbox systems", _start_sandbox),
        ("preparing Airflow's environment", prepare_env),
        ("parsing the dbt project", _parse_dbt),
        ("migrating Airflow's metadata database", lambda: _migrate_airflow(env, log)),
        ("creating a pool per source", lambda: _create_pools(env, log)),
        ("starting Airflow (api-server, scheduler, dag-processor, triggerer)", scheduler.start),
        (
            "running tieout_nightly, first night",
            lambda: scheduler.night(first_night, progress.say),
        ),
        ("a day passes in the sandbox (tieout sandbox mutate --days 1)", _mutate_once),
        (
            "running tieout_nightly, second night",
            lambda: scheduler.night(second_night, progress.say),
        ),
        ("pausing tieout_nightly and stopping Airflow", scheduler.stop),
        ("writing the dbt docs", _dbt_docs),
    ]
    os.environ.setdefault("DBT_QUIET", "true")  # dbt's own log lines go to dbt_project/logs
    started = time.monotonic()
    try:
        run_steps(steps, progress)
    finally:
        if scheduler.cluster is not None:
            scheduler.cluster.stop()
    from tieout import runs

    summary = runs.summary()
    summary["demo_seconds"] = round(time.monotonic() - started, 1)
    summary["airflow_log"] = str(log)
    click.echo("")
    for line in runs.format_summary(summary):
        click.echo(line)
    click.echo(f"demo finished in {summary['demo_seconds']} s")
    if writes := outbox_states(summary):
        click.echo("  writes back  " + ", ".join(f"{state} {n}" for state, n in writes.items()))
    click.echo("")
    for title, path in where_to_look(summary).items():
        click.echo(f"{title:<14} {path}")
    click.echo(f"Airflow output: {airflow_home() / 'logs'}")
    click.echo(
        "see both nights, their task logs and timings in the Airflow UI: .venv/bin/tieout ui"
    )
    click.echo(
        "tieout_nightly is left paused, and `tieout ui` runs no night by its schedule "
        "(0 2 * * * UTC, in production): a night runs locally only when you trigger it"
    )
    (state_dir() / "demo-summary.json").write_text(json.dumps(summary, default=str, indent=2))
    return summary


def outbox_states(summary: dict[str, Any]) -> dict[str, int]:
    """Reverse ETL's outbox by state, summed over targets (verified = proven at the target)."""
    totals: dict[str, int] = {}
    outbox = summary.get("stages", {}).get("reverse_etl", {}).get("outbox", {})
    for states in outbox.values():
        for state, count in states.items():
            totals[state] = totals.get(state, 0) + int(count)
    return totals


def where_to_look(summary: dict[str, Any]) -> dict[str, str]:
    from tieout.paths import dbt_project_dir

    stages = summary.get("stages", {})
    found = {
        "drift report": stages.get("report", {}).get("html"),
        "findings CSV": stages.get("report", {}).get("csv"),
        "drift workbook": stages.get("report", {}).get("xlsx"),
        "Data Docs": stages.get("validate", {}).get("data_docs"),
        "dbt docs": str(dbt_project_dir() / "target" / "static_index.html"),
    }
    return {title: str(path) for title, path in found.items() if path}


@click.command("demo")
def demo() -> None:
    """Run the whole product locally: warehouse, sandbox, the nightly DAG, the report."""
    run()
