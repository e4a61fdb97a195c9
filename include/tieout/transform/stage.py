"""The transform stage: one `dbt build` of the project, recorded in ops.stage_runs.

It reports what dbt did (models built, tests passed, rows touched, canonical row counts) and
fails loudly with the failing nodes; it never hides a failed test behind a green stage. A rerun
builds (and tests) only what is downstream of new raw data (tieout.transform.changes), and does
not rewrite target/ artifacts of a project that has not changed since the build that wrote them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tieout import db, runs
from tieout.paths import dbt_project_dir
from tieout.transform.builds import record_build
from tieout.transform.changes import plan_rerun
from tieout.transform.entities import render_entities_macro
from tieout.transform.runner import DbtError, DbtResult, NodeFinished, as_of_date_env, run_dbt

CANONICAL_TABLES = ("customers", "products", "orders", "order_lines", "invoices", "payments")
# Parsing needs a profile but no connection; this placeholder is used only when none is set.
PARSE_ONLY_URL = "postgresql://tieout@localhost:5432/tieout"


def build_args(
    select: str | list[str] | None = None,
    full_refresh: bool = False,
    command: str = "build",
    exclude: list[str] | None = None,
    write_json: bool = True,
) -> list[str]:
    args = [command]
    if select:
        args += ["--select", *([select] if isinstance(select, str) else select)]
    if exclude:
        args += ["--exclude", *exclude]
    if not write_json:
        args.append("--no-write-json")
    if full_refresh:
        args.append("--full-refresh")
    return args


def summarize(result: DbtResult) -> dict[str, Any]:
    """Figures for ops.stage_runs: counts by resource and status, and rows each model touched."""
    by_type: dict[str, dict[str, int]] = {}
    rows: dict[str, int] = {}
    for node in result.nodes:
        kind = node["resource_type"].rsplit(".", 1)[-1].lower()
        by_type.setdefault(kind, {})
        by_type[kind][node["status"]] = by_type[kind].get(node["status"], 0) + 1
        if kind in {"model", "snapshot"} and node["rows_affected"] is not None:
            rows[node["unique_id"].rsplit(".", 1)[-1]] = node["rows_affected"]
    return {
        "nodes": len(result.nodes),
        "by_type": by_type,
        "rows_affected": rows,
        "failed": [n["unique_id"] for n in result.failures()],
    }


def canonical_counts(url: str) -> dict[str, int]:
    """Rows in each canonical table that exists (one query finds them, one counts them all)."""
    with db.connect(url) as conn:
        present = [
            name
            for (name,) in conn.execute(
                "select name from unnest(%s::text[]) with ordinality as tables (name, position) "
                "where to_regclass('canonical.' || name) is not null order by position",
                (list(CANONICAL_TABLES),),
            )
        ]
        if not present:
            return {}
        counts = conn.execute(
            "select "  # type: ignore[arg-type]
            + ", ".join(f"(select count(*) from canonical.{table})" for table in present)
        ).fetchone()
    return {table: int(count) for table, count in zip(present, counts or (), strict=True)}


def build(
    run_id: str | None = None,
    select: str | list[str] | None = None,
    full_refresh: bool = False,
    as_of_date: str | None = None,
    url: str | None = None,
    incremental: bool = True,
    on_node: NodeFinished | None = None,
) -> dict[str, Any]:
    """`dbt build` (seeds, models, snapshots, tests); returns the figures it recorded.

    Incremental (the default) builds and tests only the nodes downstream of raw tables that
    gained rows since the last successful build, and nothing at all when no input changed;
    `incremental=False`, `full_refresh` or an explicit `select` build what they say.
    `on_node` hears of every node as it finishes (the CLI's progress bar).
    """
    run_id = run_id or runs.current_run_id()
    url = db.role_url("transformer", url)
    render_entities_macro()
    with runs.record_stage(run_id, "transform", url) as figures:
        plan = None if select else plan_rerun(url, as_of_date, not incremental or full_refresh)
        if plan is not None:
            figures["plan"] = {"reason": plan.reason, "select": plan.select}
            if plan.exclude:
                figures["plan"]["exclude"] = plan.exclude
        if plan is not None and plan.nothing_to_do:
            result = DbtResult(args=[], success=True)
        else:
            chosen = select or (plan.select if plan else None) or None
            same_project = plan is not None and plan.same_project
            args = build_args(
                chosen,
                full_refresh,
                exclude=plan.exclude if plan else None,
                # the project is the one the last build parsed: its manifest is already on disk
                write_json=not same_project,
            )
            result = run_dbt(
                args, url=url, check=False, on_node=on_node, env=as_of_date_env(as_of_date)
            )
        figures.update(summarize(result))
        figures["full_refresh"] = full_refresh
        if select:
            figures["select"] = select
        if not result.success:
            raise DbtError(
                "dbt build failed: "
                + (", ".join(figures["failed"]) or "see dbt_project/logs/dbt.log")
            )
        figures["canonical_rows"] = canonical_counts(url)
        if result.args:  # dbt wrote something: the canonical tables are a new build
            figures["build_id"] = record_build(run_id, "cli", figures["canonical_rows"], url)
        if plan is not None:
            figures["state"] = plan.state  # only a successful build is a base for the next
    return dict(figures)  # after the stage closed, so duration_s is in it


def parse_manifest(url: str | None = None) -> Path:
    """`dbt parse` to write target/manifest.json, which the Airflow DAG renders from."""
    render_entities_macro()
    run_dbt(["parse"], url=url or db.configured_url() or PARSE_ONLY_URL)
    return dbt_project_dir() / "target" / "manifest.json"


def generate_docs(url: str | None = None) -> Path:
    """`dbt docs generate --static`: one self-contained HTML file, openable without a server."""
    render_entities_macro()
    run_dbt(["docs", "generate", "--static"], url=url)
    return dbt_project_dir() / "target" / "static_index.html"
