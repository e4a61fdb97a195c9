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

from tieout.reconcile import statements
from tieout.reconcile.compare import CURRENT_TABLE

# A finding is stale in a run when a source it depends on failed to extract in that run: its
# own system, the system its canonical value comes from, or (for a record missing in or extra
# to a system) the entity's master, which decides what exists. Its comparison would be against
# last night's copy, so it is kept as it was (not resolved, not reopened) and flagged.
STALE = (
    "({a}.system = any(%(stale)s::text[])"
    " or coalesce({a}.source_of_truth, '') = any(%(stale)s::text[])"
    " or ({a}.kind in ('missing_in_system', 'extra_in_system') and %(master_stale)s))"
)

MARK_STALE = f"""
update recon.findings as finding set
    stale_since = case when {STALE.format(a="finding")}
                       then coalesce(finding.stale_since, now()) end,
    stale_since_run_id = case when {STALE.format(a="finding")}
                              then coalesce(finding.stale_since_run_id, %(run_id)s) end
where finding.entity = %(entity)s
  and finding.status <> 'resolved'
  and (finding.stale_since is not null or {STALE.format(a="finding")})
returning finding.stale_since is not null
"""


def merge(
    conn: psycopg.Connection[Any],
    run_id: str,
    entity: str,
    fields: list[str],
    stale: list[str] | None = None,
    master_stale: bool = False,
) -> dict[str, int]:
    """Merge the run's findings of one entity into history; returns seen/resolved/opened and
    how many are stale. `stale` names the systems that failed to extract in this run, and
    `master_stale` says the entity's master is one of them: their findings keep their state."""
    params = {
        "run_id": run_id,
        "entity": entity,
        "fields": fields,
        "stale": list(stale or []),
        "master_stale": master_stale,
    }
    marked = conn.execute(MARK_STALE, params).fetchall()  # type: ignore[arg-type]
    row = conn.execute(
        statements.render("merge_findings", current_table=CURRENT_TABLE, stale=STALE),  # type: ignore[arg-type]
        params,
    ).fetchone()
    assert row is not None
    return {
        "seen": int(row[0]),
        "resolved": int(row[1]),
        "opened": int(row[2]),
        "stale": sum(1 for (is_stale,) in marked if is_stale),
    }


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
    return change_status(
        conn,
        finding_id,
        reason,
        by,
        "waive",
        wrong_status="finding {id} is {status}; only open findings can be waived",
    )


def unwaive(
    conn: psycopg.Connection[Any], finding_id: int, reason: str, by: str | None = None
) -> dict[str, Any]:
    """Take a waiver back: the finding is open again, and the audit says who and why."""
    if not reason or not reason.strip():
        raise WaiveError("taking a waiver back needs a reason (--reason)")
    return change_status(
        conn, finding_id, reason, by, "unwaive", wrong_status="finding {id} is {status}, not waived"
    )


def change_status(
    conn: psycopg.Connection[Any],
    finding_id: int,
    reason: str,
    by: str | None,
    action: str,
    wrong_status: str,
) -> dict[str, Any]:
    """Waive (open -> waived) or unwaive (waived -> open) one finding with its audit row, in one
    transaction that holds the finding's row lock from the status check to the audit."""
    old_status, new_status, change = {
        "waive": (
            "open",
            "waived",
            "waived_by = %(by)s, waived_at = now(), waive_reason = %(reason)s",
        ),
        "unwaive": ("waived", "open", "waived_by = null, waived_at = null, waive_reason = null"),
    }[action]
    by = by or actor()
    values = {"id": finding_id, "by": by, "reason": reason.strip(), "action": action}
    with conn.transaction():
        row = conn.execute(
            "select status from recon.findings where finding_id = %s for update", (finding_id,)
        ).fetchone()
        if row is None:
            raise WaiveError(f"no finding {finding_id}")
        if row[0] != old_status:
            raise WaiveError(wrong_status.format(id=finding_id, status=row[0]))
        conn.execute(
            f"update recon.findings set status = '{new_status}', {change} "  # type: ignore[arg-type]
            "where finding_id = %(id)s",
            values,
        )
        conn.execute(
            f"""insert into recon.finding_audit
                   (finding_id, action, actor, reason, old_status, new_status)
               values (%(id)s, %(action)s, %(by)s, %(reason)s, '{old_status}', '{new_status}')""",  # type: ignore[arg-type]
            values,
        )
    found = show(conn, finding_id)
    assert found is not None
    return found
