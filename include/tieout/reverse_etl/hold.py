"""Held writes: what the brake, an alert or the validation gate stopped, and a person's decision.

A held row is never sent on its own. `approve` releases exactly the held rows it names (they are
sent once and read back), `discard` drops them; each decision is a row in rev.decisions with who
decided and why. Nothing here deletes an outbox row.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

Decision = Literal["approve", "discard"]


class NothingHeld(LookupError):
    """The decision names no held write."""


def decided_by(user: str | None = None) -> str:
    """Who decides: the caller's word (the Airflow user), else TIEOUT_USER, else the OS user."""
    for candidate in (user, os.environ.get("TIEOUT_USER")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def held_writes(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Held writes grouped by target, fields and reason: system, entity, fields, count, reason,
    held_at (the earliest). For the status command, the drift report and the Airflow plugin."""
    rows = conn.execute(
        """select system, entity, fields, count(*), held_reason, min(held_at)
           from rev.outbox where state = 'held'
           group by system, entity, fields, held_reason
           order by system, entity, min(held_at), fields"""
    ).fetchall()
    return [
        {
            "system": system,
            "entity": entity,
            "fields": list(fields),
            "count": int(count),
            "reason": reason,
            "held_at": held_at,
        }
        for system, entity, fields, count, reason, held_at in rows
    ]


@dataclass(frozen=True)
class Target:
    system: str
    entity: str | None


def parse_target(text: str) -> Target:
    """`crm` (every entity of the system) or `crm.customer`."""
    system, _, entity = text.strip().partition(".")
    if not system:
        raise ValueError(f"--target {text!r}: expected a system or system.entity (crm.customer)")
    return Target(system, entity or None)


def decide(
    conn: psycopg.Connection[Any],
    decision: Decision,
    target: str,
    reason: str,
    field: str | None = None,
    user: str | None = None,
) -> list[int]:
    """Release (`approve`: back to planned) or drop (`discard`) the held writes of a target,
    or only those writing `field`; one audit row. Returns the outbox ids it moved."""
    if not reason or not reason.strip():
        raise ValueError("a decision needs a reason (--reason)")
    chosen = parse_target(target)
    who = decided_by(user)
    state = "planned" if decision == "approve" else "discarded"
    with conn.transaction():
        moved = [
            int(row[0])
            for row in conn.execute(
                """update rev.outbox set state = %(state)s, updated_at = now(),
                       last_error = case when %(state)s = 'discarded'
                                         then 'discarded by ' || %(who)s || ': ' || %(reason)s
                                         else last_error end
                   where state = 'held' and system = %(system)s
                     and (%(entity)s::text is null or entity = %(entity)s::text)
                     and (%(field)s::text is null or %(field)s::text = any(fields))
                   returning outbox_id""",
                {
                    "state": state,
                    "who": who,
                    "reason": reason.strip(),
                    "system": chosen.system,
                    "entity": chosen.entity,
                    "field": field,
                },
            ).fetchall()
        ]
        if not moved:
            return []
        conn.execute(
            """insert into rev.decisions (decision, system, entity, field, reason, decided_by,
                   outbox_ids, rows)
               values (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                decision,
                chosen.system,
                chosen.entity,
                field,
                reason.strip(),
                who,
                sorted(moved),
                len(moved),
            ),
        )
    return sorted(moved)


def decisions(conn: psycopg.Connection[Any], limit: int = 50) -> list[dict[str, Any]]:
    cur = conn.execute(
        """select decision_id, decision, system, entity, field, rows, reason, decided_by,
                  decided_at
           from rev.decisions order by decision_id desc limit %s""",
        (limit,),
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
