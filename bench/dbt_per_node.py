"""The transform stage on the nightly DAG's path, two dbt projects side by side: one `dbt build
--select <node>` process per model, seed and snapshot in dependency order (what Cosmos's LOCAL
mode runs, one Airflow task per node, serially), then one `dbt test` process per test with more
than one parent (Cosmos detaches those into tasks of their own). Two nights: a first build,
then `tieout sandbox mutate --days 1`, extract and a second build.

    bench/dbt_per_node.py --scale 10 --baseline /tmp/old/dbt_project [--whole]

`--whole` runs one `dbt build` of the project a night instead (what the DAG's watcher mode runs
in `transform.dbt_producer_watcher`, with the profile's threads).

Each project builds into a warehouse database of its own, both filled with the same raw rows
(`tieout extract` into a third database, copied into both). After each night every table of
staging, intermediate, canonical and finance is compared between the two, row by row (md5 of
the ordered rows; history tables with each version's times replaced by the night it was
written). The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tieout.db import embedded, migrate
from tieout.paths import dbt_project_dir
from tieout.transform.runner import dbt_env

SCHEMAS = ("staging", "intermediate", "canonical", "finance")
# when a row was written (now()), not what it says
WRITE_TIMES = ("_loaded_at",)
SNAPSHOT_TIMES = ("dbt_valid_from", "dbt_valid_to", "dbt_updated_at")
AS_OF_DATE = "2026-12-05"


def tieout(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "tieout"), *args], check=True)


def dbt(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **dbt_env(url), "DBT_PROJECT_DIR": str(project)}
    env["DBT_PROFILES_DIR"] = str(project)
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def plan(project: Path, url: str) -> tuple[list[str], list[str]]:
    """The nodes in dependency order (seeds, models, snapshots) and the tests of several parents."""
    done = dbt(project, url, "parse", "--vars", json.dumps({"as_of_date": AS_OF_DATE}))
    if done.returncode:
        raise RuntimeError(f"dbt parse of {project} failed:\n{done.stdout[-3000:]}")
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("seed", "model", "snapshot")
    }
    order: list[str] = []
    placed: set[str] = set()

    def place(uid: str) -> None:
        if uid in placed:
            return
        placed.add(uid)
        for parent in nodes[uid].get("depends_on", {}).get("nodes", []):
            if parent in nodes:
                place(parent)
        order.append(uid)

    for uid in sorted(nodes):
        place(uid)
    multi = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and len([p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]) > 1
    )
    return [nodes[uid]["name"] for uid in order], multi


def whole_night(project: Path, url: str) -> dict[str, Any]:
    """One `dbt build` of the whole project, as the watcher mode's producer task runs it."""
    started = time.monotonic()
    done = dbt(project, url, "build", "--vars", json.dumps({"as_of_date": AS_OF_DATE}))
    if done.returncode:
        raise RuntimeError(f"dbt build in {project} failed:\n{done.stdout[-4000:]}")
    return {"wall_s": round(time.monotonic() - started, 1), "invocations": 1}


def night(project: Path, url: str, order: list[str], multi: list[str]) -> dict[str, Any]:
    """One process per node, then one per test of several parents; the wall time of all."""
    vars_ = json.dumps({"as_of_date": AS_OF_DATE})
    started = time.monotonic()
    slowest: list[tuple[float, str]] = []
    for name in order:
        t0 = time.monotonic()
        # cautious: a test runs with its node only when that is its only parent
        done = dbt(
            project,
            url,
            "build",
            "--select",
            name,
            "--indirect-selection",
            "cautious",
            "--vars",
            vars_,
        )
        slowest.append((time.monotonic() - t0, name))
        if done.returncode:
            raise RuntimeError(
                f"dbt build --select {name} in {project} failed:\n{done.stdout[-4000:]}"
            )
    for name in multi:
        done = dbt(project, url, "test", "--select", name, "--vars", vars_)
        if done.returncode:
            raise RuntimeError(
                f"dbt test --select {name} in {project} failed:\n{done.stdout[-4000:]}"
            )
    wall = time.monotonic() - started
    slowest.sort(reverse=True)
    return {
        "wall_s": round(wall, 1),
        "invocations": len(order) + len(multi),
        "slowest": {name: round(s, 2) for s, name in slowest[:5]},
    }


def digests(url: str) -> dict[str, str]:
    """md5 of each table's ordered rows, without the write times; a history table's version
    times are replaced by the rank of the run that wrote them."""
    found: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "select schemaname || '.' || tablename from pg_tables where schemaname = any(%s) "
            "order by 1",
            (list(SCHEMAS),),
        ).fetchall()
        for (table,) in tables:
            dropped = " ".join(f"- '{c}'" for c in WRITE_TIMES)
            if table.endswith("_history"):
                dropped += " - 'dbt_scd_id' " + " ".join(f"- '{c}'" for c in SNAPSHOT_TIMES)
                row_sql = (
                    f"(to_jsonb(t) {dropped} || jsonb_build_object("
                    "'from', dense_rank() over (order by dbt_valid_from), "
                    "'to', case when dbt_valid_to is not null then "
                    "(select count(distinct h.dbt_valid_from) from "
                    f"{table} as h where h.dbt_valid_from <= t.dbt_valid_to) end))::text"
                )
            else:
                row_sql = f"(to_jsonb(t) {dropped})::text"
            row = conn.execute(
                "select count(*), md5(coalesce(string_agg(r, '|' order by r), '')) from "  # type: ignore[arg-type]
                f"(select {row_sql} as r from {table} as t) as rows"
            ).fetchone()
            found[table] = f"{row[0]} {row[1]}" if row else ""
    return found


def copy_raw(source: str, targets: list[str]) -> None:
    """Make raw.* of each target the source's, row for row (identity values included)."""
    with psycopg.connect(source) as src:
        tables = [
            t
            for (t,) in src.execute(
                "select tablename from pg_tables where schemaname = 'raw' order by 1"
            ).fetchall()
        ]
        for target in targets:
            with psycopg.connect(target) as dst:
                for table in tables:
                    dst.execute(f"truncate raw.{table}")  # type: ignore[arg-type]
                    with (
                        src.cursor().copy(f"copy raw.{table} to stdout") as out,  # type: ignore[arg-type]
                        dst.cursor().copy(f"copy raw.{table} from stdin") as into,  # type: ignore[arg-type]
                    ):
                        for chunk in out:
                            into.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--baseline", type=Path, required=True, help="the other dbt project")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument(
        "--whole", action="store_true", help="one dbt build a night (watcher mode's producer)"
    )
    args = parser.parse_args()

    projects = {"baseline": args.baseline.resolve(), "current": dbt_project_dir()}
    sandbox_dir = Path(tempfile.mkdtemp(prefix="tieout-bench-sandbox-"))
    os.environ["TIEOUT_SANDBOX_DIR"] = str(sandbox_dir)
    server, _ = embedded.start()
    stamp = time.strftime("%H%M%S")
    names = {k: f"tieout_bench_pernode_{k}_{stamp}" for k in ("raw", *projects)}
    admin = server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{names["raw"]}"')  # type: ignore[arg-type]
    urls = {k: server.url(v) for k, v in names.items()}
    with psycopg.connect(urls["raw"]) as conn:
        migrate.migrate(conn)

    from tieout_sandbox.credentials import sandbox_connections

    tieout("sandbox", "seed", "--scale", str(args.scale))
    tieout("sandbox", "up")
    for system, uri in sandbox_connections(sandbox_dir).items():
        os.environ[f"AIRFLOW_CONN_TIEOUT_{system.upper()}"] = uri
    os.environ["TIEOUT_DATABASE_URL"] = urls["raw"]
    figures: dict[str, Any] = {
        "scale": args.scale,
        "path": "one dbt build" if args.whole else "a dbt per node",
        "nights": [],
    }
    try:
        tieout("extract", "--quiet", "--run-id", "bench_pernode_1")
        with psycopg.connect(admin, autocommit=True) as conn:
            for key in projects:
                conn.execute(
                    f'create database "{names[key]}" template "{names["raw"]}"'  # type: ignore[arg-type]
                )
        orders = {key: plan(project, urls[key]) for key, project in projects.items()}
        figures["nodes"] = {k: len(v[0]) for k, v in orders.items()}
        figures["tests_of_several_parents"] = {k: len(v[1]) for k, v in orders.items()}
        for number in (1, 2):
            if number == 2:
                tieout("sandbox", "mutate", "--days", "1")
                tieout("extract", "--quiet", "--run-id", "bench_pernode_2")
                copy_raw(urls["raw"], [urls[k] for k in projects])
            # the order alternates between nights, so a drift of the machine favours neither
            keys = list(projects) if number == 1 else list(reversed(projects))
            result: dict[str, Any] = {"night": number}
            for key in keys:
                if args.whole:
                    result[key] = whole_night(projects[key], urls[key])
                else:
                    result[key] = night(projects[key], urls[key], *orders[key])
            found = {key: digests(urls[key]) for key in projects}
            result["tables_compared"] = len(found["current"])
            result["tables_differing"] = sorted(
                t
                for t in set(found["baseline"]) | set(found["current"])
                if found["baseline"].get(t) != found["current"].get(t)
            )
            result["rows"] = {t: int(d.split()[0]) for t, d in found["current"].items()}
            result["current_vs_baseline"] = round(
                result["current"]["wall_s"] / result["baseline"]["wall_s"], 3
            )
            figures["nights"].append(result)
            print(json.dumps(result), flush=True)
    finally:
        tieout("sandbox", "down")
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                for name in names.values():
                    conn.execute(f'drop database if exists "{name}" with (force)')  # type: ignore[arg-type]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
