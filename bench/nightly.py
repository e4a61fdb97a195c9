"""Two nights of tieout_nightly through Airflow's scheduler, as production runs them.

    .venv/bin/python bench/nightly.py --scale 1 [--executor local|celery] [--state-dir DIR]

Seeds the sandbox at scale N in a state folder of its own (its own embedded PostgreSQL, Airflow
home and sandbox, so the demo's are never touched), starts Airflow's api-server, scheduler and
dag-processor (LocalExecutor; with `--executor celery` also a triggerer and two Celery workers
on the machine's Redis, as tests/e2e/test_celery_scaleout.py), triggers night 1 through the REST
API, checks the open findings against the sandbox's ground truth, applies `sandbox mutate --days
1`, computes the sandbox's reference reconciler over what the systems now serve (reverse ETL has
fixed part of the truth), triggers night 2 and checks its open findings against that. The two
nights are the last two passed schedule times whose second validates changed rows, not a night
of include/config/validation.yml that validates whole tables (each night's `validation` says
which it did).

Task overhead of a task instance, from its task log through the REST API (see
tieout.dev.nightrun.overhead_from_log): from the start of its try to the end of Airflow's "Pre
Execute" group (process start, DAG file parse), plus, for dbt tasks, from the start of execute()
to the dbt invocation (Cosmos's project copy and profile, dbt's import), plus Airflow's "Post
Execute" group to the end of the try. The rest of the duration is the task's work. Stage seconds
= wall span of the stage's task group (first start to last end of its task instances).

Use TIEOUT_EMBEDDED_PORT / TIEOUT_SANDBOX_BASE_PORT to keep its servers apart from others'.
The last line is one JSON object: {"scale", "executor", "nights": [{"wall_s", "tasks",
"task_overhead_p50_s", "task_overhead_p95_s", "stages": {...}, "state", "validation"}],
"findings_match_truth"}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/12"
Identity = tuple[str, str, str, str, str]  # kind, entity, system, field, record


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument(
        "--state-dir", type=Path, help="keep everything here (default: a temporary folder)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per night")
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def truth_identities(truth: dict[str, Any]) -> set[Identity]:
    """The ground truth's divergences as (kind, entity, system, field, record)."""
    found: set[Identity] = set()
    for item in truth["divergences"]:
        keys = item["keys"]
        record = keys["canonical"] if item["kind"] != "extra_in_system" else keys[item["system"]]
        found.add((item["kind"], item["entity"], item["system"], item["field"] or "", str(record)))
    return found


def reference_identities(sandbox: Path) -> set[Identity]:
    """The sandbox's reference reconciler over every record its systems serve now."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.sandbox import reference_recon, walkers

    records = walkers.read_everything(walkers.in_process_clients(sandbox))
    return {
        (kind, entity, system, field or "", str(key))
        for kind, entity, system, field, key, _, _ in reference_recon.reconcile(records)
    }


def open_findings(url: str) -> set[Identity]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select kind, entity, system, coalesce(field, ''),
                      coalesce(entity_ref, system_keys ->> 0, '')
               from recon.findings where status = 'open'"""
        ).fetchall()
    return {tuple(str(v) for v in row) for row in rows}  # type: ignore[misc]


def compare(got: set[Identity], want: set[Identity], what: str) -> bool:
    extra, missed = got - want, want - got
    log(
        f"open findings {len(got)}, {what} {len(want)}: "
        + ("equal" if not extra and not missed else f"{len(extra)} extra, {len(missed)} missed")
    )
    for label, sample in (("extra", extra), ("missed", missed)):
        for identity in sorted(sample)[:5]:
            log(f"  {label}: {identity}")
    return not extra and not missed


def start_broker() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"],
            check=True,
        )
        time.sleep(1)
    client.flushdb()
    return REDIS_URL


def validation_mode(run_id: str) -> str | None:
    """`changes` or `full`: what the night's validate stage read (ops.stage_runs)."""
    from tieout import db

    with db.connect(db.warehouse_url()) as conn:
        row = conn.execute(
            """select figures ->> 'mode' from ops.stage_runs
               where run_id = %s and stage = 'validate'""",
            (run_id,),
        ).fetchone()
    return row[0] if row else None


def night(cluster: Any, logical_date: datetime, timeout_s: float) -> dict[str, Any]:
    from tieout.dev import nightrun

    run_id = nightrun.trigger(cluster.call, logical_date, note="bench/nightly.py")
    log(f"triggered {run_id}")
    state, tis = nightrun.follow(
        cluster.call, run_id, lambda line: log(line), timeout_s, alive=cluster.check_alive
    )
    run = cluster.call("GET", f"/api/v2/dags/{nightrun.DAG_ID}/dagRuns/{run_id}").json()
    overheads = nightrun.task_overheads(cluster.call, run_id, tis)
    figures = {
        "run_id": run_id,
        "state": state,
        "wall_s": nightrun.run_wall_seconds(run),
        "tasks": len(tis),
        **nightrun.overhead_summary(list(overheads.values())),
        "overheads": overheads,
        "stages": nightrun.stage_spans(tis),
        "validation": validation_mode(run_id),
    }
    failed = sorted(ti["task_id"] for ti in tis if ti["state"] in ("failed", "upstream_failed"))
    if failed:
        figures["failed_tasks"] = failed
    log(json.dumps({k: v for k, v in figures.items() if k != "overheads"}))
    return figures


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="tieout-nightly-bench-") as scratch:
        state = (args.state_dir or Path(scratch) / "state").resolve()
        state.mkdir(parents=True, exist_ok=True)
        os.environ["TIEOUT_STATE_DIR"] = str(state)
        for name in ("TIEOUT_DATABASE_URL", "TIEOUT_AIRFLOW_DATABASE_URL", "TIEOUT_SANDBOX_DIR"):
            os.environ.pop(name, None)
        os.environ.setdefault("DBT_QUIET", "true")
        print(json.dumps(run_bench(args, state)))


def run_bench(args: argparse.Namespace, state: Path) -> dict[str, Any]:
    from tieout import db
    from tieout.config import load_validation
    from tieout.db import migrate
    from tieout.dev import cluster as airflow_cluster
    from tieout.dev import local_airflow, nightrun
    from tieout.paths import airflow_home
    from tieout.transform.stage import parse_manifest
    from tieout_sandbox import datadir, generate, mutate, server

    log(f"state folder {state}")
    migrate.migrate()
    sandbox = datadir.data_dir()
    started = time.monotonic()
    generate.seed(sandbox, args.scale, 42, generate.DEFAULT_AS_OF)
    log(f"seeded scale {args.scale:g} in {time.monotonic() - started:.1f} s")
    server.up(sandbox)
    parse_manifest()
    executor = "CeleryExecutor" if args.executor == "celery" else "LocalExecutor"
    broker = start_broker() if args.executor == "celery" else None
    cluster = airflow_cluster.start_cluster(
        airflow_home(),
        broker,
        local_airflow.metadata_url(),
        schedule=False,
        executor=executor,
    )
    nights: list[dict[str, Any]] = []
    matches: list[bool] = []
    try:
        log(f"Airflow ({executor}) at {cluster.api}; logs in {cluster.home / 'logs'}")
        nightrun.wait_for_dag(cluster.call)
        nightrun.set_paused(cluster.call, False)
        first_date, second_date = nightrun.night_dates(datetime.now(UTC), load_validation().full_on)
        nights.append(night(cluster, first_date, args.timeout))
        truth = json.loads(datadir.ground_truth_path(sandbox).read_text())
        matches.append(compare(open_findings(db.warehouse_url()), truth_identities(truth), "truth"))
        mutate.mutate(sandbox, 1)
        reference = reference_identities(sandbox)
        nights.append(night(cluster, second_date, args.timeout))
        matches.append(compare(open_findings(db.warehouse_url()), reference, "reference"))
        nightrun.set_paused(cluster.call, True)
    finally:
        cluster.stop()
        server.down(sandbox)
        from tieout.db import embedded

        embedded.stop()
    return {
        "scale": args.scale,
        "executor": args.executor,
        "nights": [
            {
                key: n[key]
                for key in ("wall_s", "tasks", "task_overhead_p50_s", "task_overhead_p95_s")
            }
            | {"stages": n["stages"], "state": n["state"], "validation": n["validation"]}
            for n in nights
        ],
        "findings_match_truth": all(matches) and len(matches) == 2,
    }


if __name__ == "__main__":
    main()
