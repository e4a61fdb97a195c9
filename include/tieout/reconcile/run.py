"""The reconcile stage: compare every entity, merge findings into history, balance, and record
the run's drift (recon.drift_runs with its alerts, see tieout.reconcile.drift_runs).

One transaction per run, so a failed run leaves history exactly as it was and every row the run
writes carries the same timestamp. It must never resolve findings of an entity it did not compare.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from tieout import db, runs
from tieout.config import Alerts, Entity, load_alerts, load_config
from tieout.extract import outcome
from tieout.reconcile import balances, drift_runs, findings
from tieout.reconcile.compare import CREATE_CURRENT, CURRENT_TABLE, Plan, default_relations
from tieout.reconcile.compare import findings_sql as compare_sql

log = logging.getLogger("tieout.reconcile")
WORK_MEM = "256MB"


def relation_columns(conn: psycopg.Connection[Any], relation: str) -> dict[str, str]:
    schema, table = relation.split(".")
    rows = conn.execute(
        """select column_name, data_type from information_schema.columns
           where table_schema = %s and table_name = %s order by ordinal_position""",
        (schema, table),
    ).fetchall()
    return {name: kind for name, kind in rows}


def exists(conn: psycopg.Connection[Any], relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()
    return bool(row and row[0])


def plan_for(
    conn: psycopg.Connection[Any],
    name: str,
    entity: Entity,
    relations: tuple[str, str] | None = None,
) -> Plan | str:
    """The comparison plan of one entity, or why it cannot be compared in this warehouse."""
    canonical, by_system = relations or default_relations(entity)
    missing = [relation for relation in (canonical, by_system) if not exists(conn, relation)]
    if missing:
        return f"not built yet: {', '.join(missing)}"
    return Plan(
        name,
        entity,
        canonical,
        by_system,
        relation_columns(conn, canonical),
        relation_columns(conn, by_system),
    )


def compare_entity(
    conn: psycopg.Connection[Any], run_id: str, plan: Plan, stale: list[str] | None = None
) -> dict[str, Any]:
    """Compare one entity and merge its findings; findings depending on a system in `stale`
    (failed to extract this run) keep their state and are flagged stale."""
    stale = [system for system in stale or [] if system in plan.spec.systems]
    started = time.monotonic()
    conn.execute(compare_sql(plan))  # type: ignore[arg-type]
    conn.execute(f"analyze {CURRENT_TABLE}")
    kinds = dict(
        conn.execute(  # type: ignore[arg-type]
            f"select kind, count(*) from {CURRENT_TABLE} where entity = %s group by kind",
            (plan.entity,),
        ).fetchall()
    )
    compared_at = time.monotonic()
    merged = findings.merge(
        conn,
        run_id,
        plan.entity,
        [f.name for f in plan.fields],
        stale=stale,
        master_stale=plan.spec.master in stale,
    )
    row = conn.execute(f"select count(*) from {plan.canonical}").fetchone()  # type: ignore[arg-type]
    return {
        "records": int(row[0]) if row else 0,
        "found": {kind: int(count) for kind, count in sorted(kinds.items())},
        "found_total": int(sum(kinds.values())),
        **merged,
        "fields": [f.name for f in plan.fields],
        "stale_systems": stale,
        "fields_not_compared": plan.skipped_fields,
        "compare_s": round(compared_at - started, 3),
        "merge_s": round(time.monotonic() - compared_at, 3),
    }


def reconcile(
    run_id: str | None = None,
    entities: Iterable[str] | None = None,
    *,
    url: str | None = None,
    specs: Mapping[str, Entity] | None = None,
    relations: Mapping[str, tuple[str, str]] | None = None,
    alerts: Alerts | None = None,
    with_balances: bool = True,
) -> dict[str, Any]:
    """Reconcile every entity (or the named ones) for `run_id`; returns the run's figures.

    `specs` and `relations` replace entities.yml and the default canonical / by-system tables
    (tests and the benchmark use them); everything else comes from include/config/.
    """
    run_id = run_id or runs.current_run_id()
    url = db.role_url("reconciler", url)
    specs = specs if specs is not None else load_config().entities
    alerts = alerts if alerts is not None else load_alerts()
    wanted = list(entities) if entities else list(specs)
    unknown = [name for name in wanted if name not in specs]
    if unknown:
        raise ValueError(
            f"unknown entity {', '.join(unknown)} (expected one of {', '.join(sorted(specs))})"
        )
    with runs.record_stage(run_id, "reconcile", url) as figures:
        started = time.monotonic()
        per_entity: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        with db.connect(url) as conn:
            conn.execute("set local timezone = 'UTC'")
            conn.execute(f"set local work_mem = '{WORK_MEM}'")
            # JIT compiles a plan when its estimated cost is high, and the estimates of freshly
            # built tables are: at scale 10 it spent 2.3 s of a 5 s balance statement compiling,
            # more on a night whose tables had no statistics yet (bench/RESULTS.md)
            conn.execute("set local jit = off")
            conn.execute(CREATE_CURRENT)  # type: ignore[arg-type]
            failed = outcome.stale_sources(conn, run_id)
            for source, streams in failed.items():
                log.warning(
                    "reconcile: %s failed to extract in this run (%s); its findings keep their "
                    "state and are marked stale",
                    source,
                    "; ".join(f"{s['stream']}: {s['error']}" for s in streams),
                )
            for name in wanted:
                plan = plan_for(conn, name, specs[name], (relations or {}).get(name))
                if isinstance(plan, str):
                    skipped[name] = plan
                    log.warning("reconcile: %s skipped (%s)", name, plan)
                    continue
                per_entity[name] = compare_entity(conn, run_id, plan, list(failed))
            balance_summary = balances.compute(conn, run_id) if with_balances else {}
            totals = drift_runs.run_totals(conn, run_id)
            totals["stale_sources"] = [s for streams in failed.values() for s in streams]
            records = {name: e["records"] for name, e in per_entity.items()}
            raised = drift_runs.evaluate(conn, run_id, alerts, records)
            duration = round(time.monotonic() - started, 3)
            drift_runs.record(
                conn,
                run_id,
                {**per_entity, **{n: {"skipped": r} for n, r in skipped.items()}},
                totals,
                balance_summary,
                raised,
                duration,
            )
            conn.commit()
        notified = drift_runs.notify(run_id, raised, alerts)
        figures.update(
            {
                "run_id": run_id,
                "entities": per_entity,
                "skipped": skipped,
                **totals,
                "findings": sum(e["found_total"] for e in per_entity.values()),
                "balances": balance_summary,
                "alert_status": "alert" if raised else "ok",
                "alerts": [a.message for a in raised],
                "notified": notified,
            }
        )
    return dict(figures)
