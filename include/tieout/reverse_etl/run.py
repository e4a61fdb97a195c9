"""One reverse ETL run: verify earlier writes, plan new ones, check the brake, then send.

It must never send anything when the safety brake trips, never write an entity whose
validation failed critically, and never write a field to its own source of truth.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg

from tieout import db
from tieout.config import Config, Target, load_config
from tieout.reverse_etl import outbox, plan
from tieout.reverse_etl.plan import BrakeEngaged
from tieout.reverse_etl.send import client_for, send_target
from tieout.reverse_etl.verify import verify_target
from tieout.runs import record_stage

LOCK_WAIT_S = 30.0


class TargetBusy(RuntimeError):
    """Another process is sending to the same target right now."""


def selected(config: Config, systems: list[str] | None, entities: list[str] | None) -> list[Target]:
    return [
        t
        for t in config.reverse_etl.targets
        if (not systems or t.system in systems) and (not entities or t.entity in entities)
    ]


def gate(run_id: str, url: str | None, targets: list[Target]) -> dict[str, str]:
    """Entity -> why reverse ETL skips it this run (failed critical validation, or none ran)."""
    from tieout.validate.run import NotValidated, blocked_entities

    try:
        blocked = blocked_entities(run_id, url)
    except NotValidated as exc:
        return {t.entity: str(exc) for t in targets}
    return {
        entity: "critical validation failed: " + ", ".join(names)
        for entity, names in blocked.items()
    }


def build_plan(
    conn: psycopg.Connection[Any], config: Config, targets: list[Target]
) -> tuple[list[plan.Write], list[dict[str, Any]], int, dict[tuple[str, str], int | None]]:
    writes: list[plan.Write] = []
    unmappable: list[dict[str, Any]] = []
    for target in targets:
        found, bad = plan.plan_target(conn, target)
        writes.extend(found)
        unmappable.extend(bad)
    known = plan.already_known(conn, writes)
    fresh = [w for w in writes if w.idempotency_key not in known]
    totals = {
        (t.system, t.entity): plan.entity_total(conn, config.entities[t.entity]) for t in targets
    }
    return fresh, unmappable, len(writes) - len(fresh), totals


def plan_figures(writes: list[plan.Write], sample: int = 5) -> dict[str, Any]:
    counted = plan.Plan(writes=writes).counts()
    records = Counter(f"{w.system}.{w.entity}" for w in writes)
    return {
        "planned_writes": len(writes),
        "records_by_target": dict(sorted(records.items())),
        "fields_by_target": counted,
        "sample": [
            {
                "target": f"{w.system}.{w.entity}",
                "record": w.record_key,
                "ref": w.entity_ref,
                "values": w.target_values,
                "request": f"{w.method} {w.path}",
            }
            for w in writes[:sample]
        ],
    }


def _lock(conn: psycopg.Connection[Any], target: Target) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        row = conn.execute(
            "select pg_try_advisory_lock(hashtext('tieout.reverse_etl'), hashtext(%s))",
            (f"{target.system}.{target.entity}",),
        ).fetchone()
        if row and row[0]:
            return
        if time.monotonic() > deadline:
            raise TargetBusy(f"another process is sending to {target.system} {target.entity}")
        time.sleep(0.2)


def _unlock(conn: psycopg.Connection[Any], target: Target) -> None:
    conn.execute(
        "select pg_advisory_unlock(hashtext('tieout.reverse_etl'), hashtext(%s))",
        (f"{target.system}.{target.entity}",),
    )


def reverse_etl(
    run_id: str,
    dry_run: bool = False,
    force: bool = False,
    systems: list[str] | None = None,
    entities: list[str] | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Verify, plan, brake, send. Returns the run's figures (also in ops.stage_runs).

    dry_run: plan and print only; nothing is written to the warehouse or any target.
    force: send even when the safety brake would stop the run.
    """
    url = db.role_url("reverse_etl", url)
    config = load_config()
    targets = selected(config, systems, entities)
    if dry_run:
        with db.connect(url) as conn:
            skipped = gate(run_id, url, targets)
            live = [t for t in targets if t.entity not in skipped]
            writes, unmappable, known, totals = build_plan(conn, config, live)
            figures = plan_figures(writes)
            figures.update(
                dry_run=True,
                already_in_outbox=known,
                unmappable=len(unmappable),
                skipped=skipped,
                brake=plan.brake_problems(writes, totals, live, config.reverse_etl.safety_brake),
            )
            conn.rollback()
        return figures
    with record_stage(run_id, "reverse_etl", url) as figures:
        figures.update(_run(run_id, config, targets, force, url))
    return dict(figures)


def _run(
    run_id: str, config: Config, targets: list[Target], force: bool, url: str | None
) -> dict[str, Any]:
    settings = config.reverse_etl
    figures: dict[str, Any] = {"run_id": run_id}
    if not settings.enabled:
        figures["note"] = "reverse ETL is disabled in reverse_etl.yml"
        return figures
    skipped = gate(run_id, url, targets)
    live = [t for t in targets if t.entity not in skipped]
    with db.connect(url, autocommit=True) as conn:
        for target in targets:
            if target.entity in skipped:
                conn.execute(
                    """insert into rev.skips (run_id, system, entity, reason)
                       values (%s, %s, %s, %s)
                       on conflict (run_id, system, entity)
                       do update set reason = excluded.reason""",
                    (run_id, target.system, target.entity, skipped[target.entity]),
                )
        figures["skipped"] = skipped
        clients = {}
        verified: dict[str, dict[str, int]] = {}
        for target in live:
            name = f"{target.system}.{target.entity}"
            clients[name] = client_for(config.sources[target.system], target)
            client, base_url = clients[name]
            outcome = verify_target(conn, target, run_id, client, base_url, settings.max_attempts)
            if outcome:
                verified[name] = dict(outcome)
        figures["verify"] = verified

        writes, unmappable, known, totals = build_plan(conn, config, live)
        figures.update(plan_figures(writes))
        figures["already_in_outbox"] = known
        figures["unmappable"] = unmappable[:50]
        problems = plan.brake_problems(writes, totals, live, settings.safety_brake)
        if problems and not force:
            raise BrakeEngaged(
                "reverse ETL stopped before sending anything: "
                + "; ".join(problems)
                + ". Check the findings, then rerun with --force if the changes are intended."
            )
        figures["brake_overridden"] = problems if problems else []
        figures["inserted"] = outbox.insert_planned(conn, writes, run_id)

        sent: dict[str, Any] = {}
        for target in live:
            name = f"{target.system}.{target.entity}"
            client, base_url = clients[name]
            _lock(conn, target)
            try:
                result = send_target(
                    conn,
                    target,
                    run_id,
                    client,
                    base_url,
                    target.batch_size or settings.batch_size,
                    settings.max_attempts,
                )
            finally:
                _unlock(conn, target)
            if result.rows or client.counters.requests:
                sent[name] = {
                    "rows": result.rows,
                    **dict(result.outcomes),
                    "seconds": round(result.seconds, 3),
                    "write_requests": client.writes,
                    "read_requests": client.reads,
                    "http_429": client.counters.http_429,
                }
            client.close()
        figures["send"] = sent
        figures["requests"] = sum(c.counters.requests for c, _ in clients.values())
        figures["outbox"] = outbox.states(conn)
        figures["needs_person"] = plan.needs_person(conn, settings, config.entities)
    return figures


def verify(run_id: str, url: str | None = None) -> dict[str, Any]:
    """Only the read-back half, for a DAG that wants it as its own task."""
    url = db.role_url("reverse_etl", url)
    config = load_config()
    out: dict[str, Any] = {}
    with db.connect(url, autocommit=True) as conn:
        for target in config.reverse_etl.targets:
            client, base_url = client_for(config.sources[target.system], target)
            outcome = verify_target(
                conn, target, run_id, client, base_url, config.reverse_etl.max_attempts
            )
            client.close()
            if outcome:
                out[f"{target.system}.{target.entity}"] = dict(outcome)
    return out
