"""Judge every source, reverse-ETL target and entity's divergence from the warehouse, keep the
states in ops.integration_health, and alert through the reconcile notifier when one changes.

Reads ops and recon, writes only ops.integration_health; `judge` writes nothing at all, so the
`tieout health` command and the Airflow page can call it freely.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tieout import db
from tieout.config import Alerts, Config, load_alerts, load_config
from tieout.health import rules
from tieout.reconcile.drift_runs import Alert, notify

log = logging.getLogger("tieout.health")


def latest_metrics(conn: psycopg.Connection[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest metrics row of each (direction, source, stream)."""
    if not _has_table(conn, "ops.integration_metrics"):
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """select distinct on (direction, source, stream) *
               from ops.integration_metrics
               order by direction, source, stream, recorded_at desc"""
        )
        return {(r["direction"], r["source"], r["stream"]): r for r in cur.fetchall()}


def overdue_findings(
    conn: psycopg.Connection[Any], limits: dict[str, int]
) -> dict[str, tuple[int, float | None]]:
    """Per entity: open findings older than its limit in days, and the oldest one's age."""
    if not limits or not _has_table(conn, "recon.findings"):
        return {}
    rows = conn.execute(
        """select l.entity, count(f.finding_id),
                  max(extract(epoch from now() - f.first_seen_at)) / 86400
           from jsonb_each_text(%s::jsonb) as l(entity, days)
           left join recon.findings f
             on f.entity = l.entity and f.status = 'open'
            and f.first_seen_at < now() - make_interval(days => l.days::int)
           group by l.entity""",
        (psycopg.types.json.Jsonb(limits),),
    ).fetchall()
    return {
        entity: (int(count), float(age) if age is not None else None) for entity, count, age in rows
    }


def judge(
    conn: psycopg.Connection[Any],
    config: Config | None = None,
    alerts: Alerts | None = None,
    now: datetime | None = None,
) -> list[rules.Judgement]:
    """Every source, every reverse-ETL target, every entity with a divergence limit."""
    config = config or load_config()
    alerts = alerts or load_alerts()
    now = now or datetime.now(UTC)
    latest = latest_metrics(conn)
    judged: list[rules.Judgement] = []
    for name in sorted(config.sources):
        source = config.sources[name]
        rows = {s: r for (d, src, s), r in latest.items() if d == "extract" and src == name}
        judged.append(rules.judge_source(source, rows, alerts.health, now))
    for target in config.reverse_etl.targets:
        row = latest.get(("reverse_etl", target.system, target.entity))
        judged.append(rules.judge_target(target, row, alerts.health))
    limits = {
        entity: limit
        for entity in sorted(config.entities)
        if (limit := alerts.divergence_limit(entity)) is not None
    }
    for entity, (count, oldest) in sorted(overdue_findings(conn, limits).items()):
        judged.append(rules.judge_divergence(entity, count, oldest, limits[entity]))
    return judged


def record(
    conn: psycopg.Connection[Any], judged: list[rules.Judgement], run_id: str | None
) -> list[tuple[rules.Judgement, str | None]]:
    """Store each state; return those that changed with the state before (None: first seen)."""
    changed: list[tuple[rules.Judgement, str | None]] = []
    with conn.transaction():
        for j in judged:
            before = conn.execute(
                "select state from ops.integration_health where kind = %s and name = %s for update",
                (j.kind, j.name),
            ).fetchone()
            previous = before[0] if before else None
            conn.execute(
                """insert into ops.integration_health (kind, name, state, rule, detail, run_id)
                   values (%s, %s, %s, %s, %s, %s)
                   on conflict (kind, name) do update set
                       state = excluded.state, rule = excluded.rule, detail = excluded.detail,
                       run_id = excluded.run_id, judged_at = now(),
                       since = case when ops.integration_health.state = excluded.state
                                    then ops.integration_health.since else now() end""",
                (j.kind, j.name, j.state, j.rule, j.detail, run_id),
            )
            if previous != j.state and not (previous is None and j.state == rules.HEALTHY):
                changed.append((j, previous))
    return changed


def alerts_for(changed: list[tuple[rules.Judgement, str | None]]) -> list[Alert]:
    """A sentence per change of state; prolonged divergence is its own kind of alert."""
    out = []
    for j, previous in changed:
        was = f"was {previous}" if previous else "first check"
        kind = "prolonged_divergence" if j.rule == "prolonged_divergence" else "integration_state"
        out.append(
            Alert(
                kind,
                f"{j.kind} {j.name} is {j.state} ({was}): {j.rule}: {j.detail}",
                float(rules.SEVERITY[j.state]),
                float(rules.SEVERITY.get(previous or rules.HEALTHY, 0)),
                entity=j.name if j.kind == "divergence" else None,
            )
        )
    return out


def check(run_id: str, url: str | None = None) -> dict[str, Any]:
    """Judge, store and alert on changes: the nightly's last task."""
    alerts = load_alerts()
    with db.connect(url, autocommit=True) as conn:
        judged = judge(conn, alerts=alerts)
        changed = record(conn, judged, run_id)
    raised = alerts_for(changed)
    outcome = notify(run_id, raised, alerts)
    return {
        "states": {f"{j.kind}:{j.name}": j.state for j in judged},
        "changed": [a.message for a in raised],
        "notified": outcome,
    }


def _has_table(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])
