"""One reverse ETL run: check the gate, verify earlier writes, plan new ones, hold what needs a
person (a value changed since validation, an alert, the brake), then send the rest.

It must never send a held write, never write from a build no later validation passed, never
write an entity whose validation failed critically, and never write a field to its own source
of truth.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import psycopg

from tieout import db
from tieout.config import Config, Target, load_config
from tieout.db import migrate
from tieout.extract import outcome as extract_outcome
from tieout.reconcile import drift_runs
from tieout.reverse_etl import hold, outbox, plan, stale
from tieout.reverse_etl.gate import Binding, bound_validation, changes_since
from tieout.reverse_etl.send import client_for, record_metrics, send_target
from tieout.reverse_etl.verify import verify_target
from tieout.runs import record_stage

LOCK_WAIT_S = 30.0
log = logging.getLogger("tieout.reverse_etl")


class TargetBusy(RuntimeError):
    """Another process is sending to the same target right now."""


def selected(config: Config, systems: list[str] | None, entities: list[str] | None) -> list[Target]:
    return [
        t
        for t in config.reverse_etl.targets
        if (not systems or t.system in systems) and (not entities or t.entity in entities)
    ]


def gate(run_id: str, url: str | None, targets: list[Target]) -> dict[str, str]:
    """Entity -> why reverse ETL skips it this run (failed critical validation, or none ran).

    Raises GateRefused when the run's validation did not check the build canonical holds now."""
    from tieout.validate.run import NotValidated, blocked_entities

    with db.connect(url) as conn:
        bound_validation(conn, run_id)

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
        found, bad = plan.plan_target(conn, target, config.entities[target.entity].key)
        writes.extend(found)
        unmappable.extend(bad)
    known = plan.already_known(conn, writes)
    fresh = [w for w in writes if w.idempotency_key not in known]
    totals = {
        (t.system, t.entity): plan.entity_total(conn, config.entities[t.entity]) for t in targets
    }
    return fresh, unmappable, len(writes) - len(fresh), totals


def holds(
    conn: psycopg.Connection[Any],
    config: Config,
    binding: Binding,
    writes: list[plan.Write],
    totals: dict[tuple[str, str], int | None],
    targets: list[Target],
    force: bool,
) -> dict[str, str]:
    """Idempotency key -> why the write waits for a person, checked in this order: a value that
    changed since the validation, an alert of the latest reconcile (writes correcting findings
    first seen in that run), the safety brake (which `force` overrides; the others it does not)."""
    held: dict[str, str] = {}
    changes = changes_since(conn, config, binding)
    for w in writes:
        found = changes.get(w.entity)
        if found is None:
            continue
        if w.canonical_key is None:
            held[w.idempotency_key] = "the write names no canonical row to check"
            continue
        moved = [f for f in sorted(w.canonical_values) if w.canonical_key in found.keys.get(f, ())]
        if moved:
            held[w.idempotency_key] = "validation gate: " + found.reason(moved, binding)
    alert_run, raised = drift_runs.holding(conn)
    fresh = {
        int(row[0])
        for row in conn.execute(
            "select finding_id from recon.findings where first_seen_run_id = %s", (alert_run,)
        )
    }
    for alert in raised:
        for w in writes:
            if w.idempotency_key in held or not fresh.intersection(w.finding_ids):
                continue
            entity = config.entities[w.entity]
            money = {entity.money_field, entity.currency_field} - {None}
            if (alert.get("kind") == "new_findings" and alert.get("entity") == w.entity) or (
                alert.get("kind") == "money_at_stake" and money & set(w.canonical_values)
            ):
                held[w.idempotency_key] = (
                    f"alert of reconcile run {alert_run}: {alert.get('message')}"
                )
    if not force:
        rest = [w for w in writes if w.idempotency_key not in held]
        held.update(plan.window_holds(conn, rest, totals, targets, config.reverse_etl.safety_brake))
    return held


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
    force: send even above the safety brake (changed values and alerts still hold).
    """
    url = db.role_url("reverse_etl", url)
    config = load_config()
    targets = selected(config, systems, entities)
    if dry_run:
        migrate.require_current(url)
        with db.connect(url) as conn:
            skipped = gate(run_id, url, targets)
            live = [t for t in targets if t.entity not in skipped]
            failed = extract_outcome.stale_sources(conn, run_id)
            down = stale.stale_targets(live, failed)
            live = [t for t in live if (t.system, t.entity) not in down]
            binding = bound_validation(conn, run_id)
            writes, unmappable, known, totals = build_plan(conn, config, live)
            writes, dropped = stale.drop_stale_writes(conn, config, writes, failed)
            held = holds(conn, config, binding, writes, totals, live, force)
            figures = plan_figures([w for w in writes if w.idempotency_key not in held])
            figures.update(
                dry_run=True,
                run_id=run_id,
                build_id=binding.build_id,
                already_in_outbox=known,
                unmappable=len(unmappable),
                skipped=skipped,
                stale={
                    "targets": {f"{s}.{e}": why for (s, e), why in down.items()},
                    "writes_not_planned": dropped,
                },
                brake=plan.brake_problems(writes, totals, live, config.reverse_etl.safety_brake),
                would_hold=held_summary(writes, held),
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
        failed = extract_outcome.stale_sources(conn, run_id)
        down = stale.stale_targets(live, failed)
        for (system, entity), why in down.items():
            log.warning("reverse ETL: %s.%s skipped: %s", system, entity, why)
            conn.execute(
                """insert into rev.skips (run_id, system, entity, reason)
                   values (%s, %s, %s, %s)
                   on conflict (run_id, system, entity) do update set reason = excluded.reason""",
                (run_id, system, entity, why),
            )
        live = [t for t in live if (t.system, t.entity) not in down]
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

        binding = bound_validation(conn, run_id)
        figures["build_id"] = binding.build_id
        writes, unmappable, known, totals = build_plan(conn, config, live)
        writes, dropped = stale.drop_stale_writes(conn, config, writes, failed)
        figures["stale"] = {
            "targets": {f"{s}.{e}": why for (s, e), why in down.items()},
            "writes_not_planned": dropped,
        }
        held = holds(conn, config, binding, writes, totals, live, force)
        figures.update(plan_figures([w for w in writes if w.idempotency_key not in held]))
        figures["already_in_outbox"] = known
        figures["unmappable"] = unmappable[:50]
        problems = plan.brake_problems(writes, totals, live, settings.safety_brake)
        figures["brake_overridden"] = problems if force else []
        figures["inserted"] = outbox.insert_planned(conn, writes, run_id, held)
        figures["held"] = held_summary(writes, held)

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
            record_metrics(run_id, target, client, result, url)
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
        figures["held_writes"] = hold.held_writes(conn)
        figures["needs_person"] = plan.needs_person(conn, settings, config.entities)
    return figures


def held_summary(writes: list[plan.Write], held: dict[str, str]) -> dict[str, Any]:
    """Writes held in this run: how many, and per target and reason."""
    by_reason: Counter[tuple[str, str]] = Counter(
        (f"{w.system}.{w.entity}", held[w.idempotency_key])
        for w in writes
        if w.idempotency_key in held
    )
    return {
        "writes": sum(by_reason.values()),
        "by_reason": [
            {"target": target, "count": count, "reason": reason}
            for (target, reason), count in sorted(by_reason.items())
        ],
    }


def release(
    target: str,
    reason: str,
    field: str | None = None,
    user: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """A person approves held writes: exactly those are sent now, once, and read back."""
    from tieout.runs import new_run_id

    config = load_config()
    settings = config.reverse_etl
    run_id = new_run_id("approve")
    figures: dict[str, Any] = {"run_id": run_id, "sent": {}, "verify": {}}
    with db.connect(url, autocommit=True) as conn:
        ids = hold.decide(conn, "approve", target, reason, field, user)
        figures["released"] = len(ids)
        if not ids:
            return figures
        rows = conn.execute(
            """select system, entity, array_agg(outbox_id order by outbox_id) from rev.outbox
               where outbox_id = any(%s) group by 1, 2""",
            (ids,),
        ).fetchall()
        for system, entity, chosen in rows:
            spec = next(
                (t for t in settings.targets if (t.system, t.entity) == (system, entity)), None
            )
            if spec is None:
                figures["sent"][f"{system}.{entity}"] = "no such target in reverse_etl.yml"
                continue
            client, base_url = client_for(config.sources[system], spec)
            _lock(conn, spec)
            try:
                result = send_target(
                    conn,
                    spec,
                    run_id,
                    client,
                    base_url,
                    spec.batch_size or settings.batch_size,
                    settings.max_attempts,
                    list(chosen),
                )
                outcome = verify_target(
                    conn, spec, run_id, client, base_url, settings.max_attempts, list(chosen)
                )
            finally:
                _unlock(conn, spec)
                client.close()
            figures["sent"][f"{system}.{entity}"] = {"rows": result.rows, **dict(result.outcomes)}
            figures["verify"][f"{system}.{entity}"] = dict(outcome)
    return figures


def discard(
    target: str,
    reason: str,
    field: str | None = None,
    user: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """A person drops held writes: they are never sent; the audit row says who and why."""
    with db.connect(url, autocommit=True) as conn:
        ids = hold.decide(conn, "discard", target, reason, field, user)
    return {"discarded": len(ids)}


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
