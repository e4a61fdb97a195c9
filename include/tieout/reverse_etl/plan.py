"""From open findings to intended writes: one write per target record, however many fields.

Planning reads the warehouse and never writes anything, here or at a target.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from tieout.config import Entity, ReverseEtl, SafetyBrake, Target
from tieout.reverse_etl import mapping

PERSON_REASONS = {
    "missing_in_system": "the record is missing in the system; creating records is a decision",
    "extra_in_system": "the system holds a record no master record matches",
    "duplicate_key": "two records of one system are the same entity; merging needs a person",
    "null_key": "the record has no key to match on",
}


@dataclass
class Write:
    system: str
    entity: str
    record_key: str
    entity_ref: str | None
    finding_ids: list[int]
    canonical_values: dict[str, str]
    target_values: dict[str, Any]
    method: str
    path: str
    body: str
    idempotency_key: str
    canonical_key: str | None = None  # the canonical row the values come from


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    unmappable: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Writes per target and field, e.g. {'crm.customer.city': 12}."""
        counted: Counter[str] = Counter()
        for write in self.writes:
            for name in write.target_values:
                counted[f"{write.system}.{write.entity}.{name}"] += 1
        return dict(sorted(counted.items()))


OPEN_MISMATCHES = """
select finding_id, system_keys ->> 0 as record_key, entity_ref, field, canonical_value, currency,
       finding_key ->> %s as canonical_key
from recon.findings
where status = 'open' and kind = 'value_mismatch'
  and system = %s and entity = %s and field = any(%s)
order by record_key, field, finding_id
"""


def plan_target(
    conn: psycopg.Connection[Any], target: Target, key: str = ""
) -> tuple[list[Write], list[dict]]:
    """The writes that correct `target`'s open value mismatches, and the ones it cannot map.
    `key` is the canonical key column, whose value each write remembers (`canonical_key`)."""
    rows = conn.execute(
        OPEN_MISMATCHES, (key, target.system, target.entity, target.fields)
    ).fetchall()
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[1] or "", []).append(row)
    writes: list[Write] = []
    unmappable: list[dict[str, Any]] = []
    for record_key, group in grouped.items():
        canonical: dict[str, str] = {}
        values: dict[str, Any] = {}
        problems = []
        path = ""
        if record_key:
            try:
                path = mapping.record_path(target.path, record_key)
            except mapping.MappingError as exc:
                problems.append(str(exc))
        for finding_id, _, _, name, value, currency, _ in group:
            if not record_key:
                problems.append(f"finding {finding_id} names no {target.system} record")
            elif value is None:
                problems.append(f"{name}: the canonical record has no value")
            else:
                try:
                    values[name] = mapping.target_value(target, name, value, currency)
                    canonical[name] = value
                except mapping.MappingError as exc:
                    problems.append(str(exc))
        if problems:
            unmappable.append(
                {
                    "system": target.system,
                    "entity": target.entity,
                    "record_key": record_key,
                    "finding_ids": [row[0] for row in group],
                    "reason": "; ".join(problems),
                }
            )
            continue
        writes.append(
            Write(
                system=target.system,
                entity=target.entity,
                record_key=record_key,
                entity_ref=group[0][2],
                finding_ids=[row[0] for row in group],
                canonical_values=canonical,
                target_values=values,
                method=target.method,
                path=path,
                body=mapping.body_text(mapping.request_body(target, values)),
                idempotency_key=mapping.idempotency_key(
                    target.entity, target.system, record_key, values
                ),
                canonical_key=group[0][6],
            )
        )
    return writes, unmappable


def already_known(conn: psycopg.Connection[Any], writes: list[Write]) -> set[str]:
    """Idempotency keys of writes the outbox already holds, and records with a write in flight."""
    if not writes:
        return set()
    keys = [w.idempotency_key for w in writes]
    records = [f"{w.system}\x1f{w.entity}\x1f{w.record_key}" for w in writes]
    known = {
        row[0]
        for row in conn.execute(
            "select idempotency_key from rev.outbox where idempotency_key = any(%s)", (keys,)
        )
    }
    busy = {
        row[0]
        for row in conn.execute(
            """select system || chr(31) || entity || chr(31) || record_key from rev.outbox
               where state in ('planned', 'sent', 'acknowledged', 'failed', 'held')
                 and system || chr(31) || entity || chr(31) || record_key = any(%s)""",
            (records,),
        )
    }
    return known | {
        w.idempotency_key for w in writes if f"{w.system}\x1f{w.entity}\x1f{w.record_key}" in busy
    }


def entity_total(conn: psycopg.Connection[Any], entity: Entity) -> int | None:
    """How many records the entity has (its canonical table), None when not built yet."""
    exists = conn.execute("select to_regclass(%s) is not null", (entity.table,)).fetchone()
    if not exists or not exists[0]:
        return None
    schema, _, table = entity.table.partition(".")
    row = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
    ).fetchone()
    return int(row[0]) if row else 0


def brake_problems(
    writes: list[Write],
    totals: dict[tuple[str, str], int | None],
    targets: list[Target],
    default: SafetyBrake,
) -> list[str]:
    """One line per target whose planned share of records is above its brake."""
    problems = []
    for target in targets:
        brake = target.safety_brake or default
        records = {
            w.record_key for w in writes if (w.system, w.entity) == (target.system, target.entity)
        }
        if not records or len(records) <= brake.min_rows:
            continue
        total = totals.get((target.system, target.entity))
        share = len(records) / total if total else 1.0
        if share > brake.max_share:
            problems.append(
                f"{target.system} {target.entity}: {len(records):,} of "
                f"{total if total is not None else 'unknown'} records to change "
                f"({share:.1%}), above the safety brake of {brake.max_share:.0%} "
                f"(min_rows {brake.min_rows})"
            )
    return problems


WRITTEN_IN_WINDOW = """
select field, count(distinct record_key)
from rev.outbox, unnest(fields) as field
where system = %s and entity = %s
  and state in ('planned', 'sent', 'acknowledged', 'verified', 'failed')
  and coalesce(sent_at, created_at) > now() - make_interval(secs => %s)
group by field
"""


def window_holds(
    conn: psycopg.Connection[Any],
    writes: list[Write],
    totals: dict[tuple[str, str], int | None],
    targets: list[Target],
    default: SafetyBrake,
) -> dict[str, str]:
    """Idempotency key -> why the brake holds it: per target and field, the records written in
    this run, or over a rolling window across runs together with this run's, above the share
    the brake allows (and above min_rows)."""
    held: dict[str, str] = {}
    for target in targets:
        brake = target.safety_brake or default
        mine = [w for w in writes if (w.system, w.entity) == (target.system, target.entity)]
        if not mine:
            continue
        total = totals.get((target.system, target.entity))
        name = f"{target.system}.{target.entity}"
        planned: dict[str, set[str]] = {}
        for w in mine:
            for f in w.target_values:
                planned.setdefault(f, set()).add(w.record_key)
        reasons: dict[str, str] = {}
        for f, records in planned.items():
            share = len(records) / total if total else 1.0
            if len(records) > brake.min_rows and share > brake.max_share:
                reasons[f] = (
                    f"safety brake: {name}.{f}: {len(records):,} of {total or 'unknown'} "
                    f"records in this run ({share:.1%}), above {brake.max_share:.0%}"
                )
        for window in brake.windows:
            before = dict(
                conn.execute(
                    WRITTEN_IN_WINDOW, (target.system, target.entity, window.hours * 3600)
                ).fetchall()
            )
            for f, records in planned.items():
                count = int(before.get(f, 0)) + len(records)
                share = count / total if total else 1.0
                if f not in reasons and count > brake.min_rows and share > window.max_share:
                    reasons[f] = (
                        f"safety brake: {name}.{f}: {count:,} of {total or 'unknown'} records "
                        f"written in {window.hours:g} h with this run ({share:.1%}), above "
                        f"{window.max_share:.0%}"
                    )
        for w in mine:
            hit = [reasons[f] for f in sorted(w.target_values) if f in reasons]
            if hit:
                held[w.idempotency_key] = "; ".join(hit)
    return held


def needs_person(
    conn: psycopg.Connection[Any], config: ReverseEtl, entities: dict[str, Entity]
) -> list[dict[str, Any]]:
    """Open findings reverse ETL will not write, grouped, each with the reason why."""
    writable = {(t.system, t.entity, f) for t in config.targets for f in t.fields}
    rows = conn.execute(
        """select entity, system, kind, field, count(*) from recon.findings
           where status = 'open' group by 1, 2, 3, 4 order by 1, 2, 3, 4"""
    ).fetchall()
    found = []
    for entity, system, kind, name, count in rows:
        if kind == "value_mismatch":
            if (system, entity, name) in writable:
                continue
            spec = entities.get(entity)
            truth = spec.fields[name].source_of_truth if spec and name in spec.fields else None
            reason = (
                f"{system} is the source of truth for {name}"
                if truth == system
                else f"no reverse ETL target writes {entity}.{name} to {system}"
            )
        else:
            reason = PERSON_REASONS.get(kind, kind)
        found.append(
            {
                "entity": entity,
                "system": system,
                "kind": kind,
                "field": name,
                "findings": count,
                "reason": reason,
            }
        )
    if conn.execute("select to_regclass('recon.balances') is not null").fetchone()[0]:  # type: ignore[index]
        for outcome, count in conn.execute(
            """select outcome, count(*) from recon.balances
               where run_id = (select run_id from recon.drift_runs
                               order by reconciled_at desc limit 1)
               group by 1 order by 1"""
        ):
            found.append(
                {
                    "entity": "balance",
                    "system": "",
                    "kind": outcome,
                    "field": "",
                    "findings": count,
                    "reason": "a balance break: money does not add up; a person must decide",
                }
            )
    return found
