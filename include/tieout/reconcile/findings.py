"""recon.findings as history: a run's differences merged into the findings of every earlier run.

One statement per entity inserts what is new, touches what is seen again and resolves what is
gone. It must never delete a finding, and never change a status without a run or a name on it.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tieout.reconcile.compare import CURRENT_TABLE

IDENTITY = "(finding.system, finding.kind, finding.field, finding.finding_key)"
CURRENT_IDENTITY = "(current.system, current.kind, current.field, current.finding_key)"

MERGE = f"""
with

seen as (
    update recon.findings as finding set
        last_seen_run_id = %(run_id)s,
        last_seen_at = now(),
        times_seen = finding.times_seen
            + case when finding.last_seen_run_id = %(run_id)s then 0 else 1 end,
        entity_ref = current.entity_ref,
        system_keys = current.system_keys,
        canonical_value = current.canonical_value,
        system_value = current.system_value,
        currency = current.currency,
        money_impact = current.money_impact
    from {CURRENT_TABLE} as current
    where
        finding.entity = %(entity)s
        and current.entity = %(entity)s
        and finding.status <> 'resolved'
        and {IDENTITY} = {CURRENT_IDENTITY}
    returning finding.finding_id
),

gone as (
    update recon.findings as finding set
        status = 'resolved',
        resolved_run_id = %(run_id)s,
        resolved_at = now()
    where
        finding.entity = %(entity)s
        and finding.status <> 'resolved'
        and (finding.kind <> 'value_mismatch' or finding.field = any(%(fields)s))
        and not exists (
            select 1 from {CURRENT_TABLE} as current
            where current.entity = %(entity)s and {CURRENT_IDENTITY} = {IDENTITY}
        )
    returning finding.finding_id
),

opened as (
    insert into recon.findings (
        entity, system, kind, field, finding_key, entity_key, entity_ref, system_keys,
        source_of_truth, canonical_value, system_value, currency, money_impact,
        first_seen_run_id, last_seen_run_id
    )
    select distinct on (current.system, current.kind, current.field, current.finding_key)
        current.entity, current.system, current.kind, current.field, current.finding_key,
        current.entity_key, current.entity_ref, current.system_keys, current.source_of_truth,
        current.canonical_value, current.system_value, current.currency, current.money_impact,
        %(run_id)s, %(run_id)s
    from {CURRENT_TABLE} as current
    where
        current.entity = %(entity)s
        and not exists (
            select 1 from recon.findings as finding
            where
                finding.entity = %(entity)s
                and finding.status <> 'resolved'
                and {IDENTITY} = {CURRENT_IDENTITY}
        )
    returning finding_id
)

select
    (select count(*) from seen) as seen,
    (select count(*) from gone) as resolved,
    (select count(*) from opened) as opened
"""


def merge(
    conn: psycopg.Connection[Any], run_id: str, entity: str, fields: list[str]
) -> dict[str, int]:
    """Merge the run's findings of one entity into history; returns seen/resolved/opened."""
    row = conn.execute(
        MERGE,  # type: ignore[arg-type]
        {"run_id": run_id, "entity": entity, "fields": fields},
    ).fetchone()
    assert row is not None
    return {"seen": int(row[0]), "resolved": int(row[1]), "opened": int(row[2])}


# ---------------------------------------------------------------- reading and waiving

LIST_COLUMNS = """
    finding_id, status, entity, system, kind, field, entity_ref, canonical_value, system_value,
    currency, money_impact, first_seen_at, last_seen_at, resolved_at, times_seen
"""


def actor() -> str:
    return os.environ.get("TIEOUT_USER") or getpass.getuser()


def list_findings(
    conn: psycopg.Connection[Any],
    status: str | None = "open",
    entity: str | None = None,
    system: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            select {LIST_COLUMNS}
            from recon.findings
            where
                (%(status)s::text is null or status = %(status)s)
                and (%(entity)s::text is null or entity = %(entity)s)
                and (%(system)s::text is null or system = %(system)s)
                and (%(kind)s::text is null or kind = %(kind)s)
            order by money_impact desc nulls last, first_seen_at, finding_id
            limit %(limit)s
            """,  # type: ignore[arg-type]
            {"status": status, "entity": entity, "system": system, "kind": kind, "limit": limit},
        )
        return list(cur.fetchall())


def show(conn: psycopg.Connection[Any], finding_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        finding = cur.execute(
            "select * from recon.findings where finding_id = %s", (finding_id,)
        ).fetchone()
        if finding is None:
            return None
        audit = cur.execute(
            """select action, actor, reason, old_status, new_status, at
               from recon.finding_audit where finding_id = %s order by at, audit_id""",
            (finding_id,),
        ).fetchall()
    return {**finding, "audit": list(audit)}


class WaiveError(ValueError):
    """The finding cannot be waived (or un-waived) as asked."""


def waive(
    conn: psycopg.Connection[Any], finding_id: int, reason: str, by: str | None = None
) -> dict[str, Any]:
    """Mark an open finding waived, with who, when and why, and an audit row in one transaction."""
    if not reason or not reason.strip():
        raise WaiveError("a waiver needs a reason (--reason)")
    by = by or actor()
    with conn.transaction():
        row = conn.execute(
            "select status from recon.findings where finding_id = %s for update", (finding_id,)
        ).fetchone()
        if row is None:
            raise WaiveError(f"no finding {finding_id}")
        if row[0] != "open":
            raise WaiveError(f"finding {finding_id} is {row[0]}; only open findings can be waived")
        conn.execute(
            """update recon.findings
               set status = 'waived', waived_by = %s, waived_at = now(), waive_reason = %s
               where finding_id = %s""",
            (by, reason.strip(), finding_id),
        )
        conn.execute(
            """insert into recon.finding_audit
                   (finding_id, action, actor, reason, old_status, new_status)
               values (%s, 'waive', %s, %s, 'open', 'waived')""",
            (finding_id, by, reason.strip()),
        )
    found = show(conn, finding_id)
    assert found is not None
    return found


def unwaive(
    conn: psycopg.Connection[Any], finding_id: int, reason: str, by: str | None = None
) -> dict[str, Any]:
    """Take a waiver back: the finding is open again, and the audit says who and why."""
    if not reason or not reason.strip():
        raise WaiveError("taking a waiver back needs a reason (--reason)")
    by = by or actor()
    with conn.transaction():
        row = conn.execute(
            "select status from recon.findings where finding_id = %s for update", (finding_id,)
        ).fetchone()
        if row is None:
            raise WaiveError(f"no finding {finding_id}")
        if row[0] != "waived":
            raise WaiveError(f"finding {finding_id} is {row[0]}, not waived")
        conn.execute(
            """update recon.findings
               set status = 'open', waived_by = null, waived_at = null, waive_reason = null
               where finding_id = %s""",
            (finding_id,),
        )
        conn.execute(
            """insert into recon.finding_audit
                   (finding_id, action, actor, reason, old_status, new_status)
               values (%s, 'unwaive', %s, %s, 'waived', 'open')""",
            (finding_id, by, reason.strip()),
        )
    found = show(conn, finding_id)
    assert found is not None
    return found
