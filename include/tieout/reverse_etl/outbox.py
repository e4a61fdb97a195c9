"""rev.outbox as a state machine: planned -> sent -> acknowledged -> verified, or failed -> dead.

Every transition is one committed SQL statement; a row is never deleted and never skips `sent`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from tieout.reverse_etl.plan import Write

LIVE = ("planned", "sent", "acknowledged", "failed", "held")


@dataclass
class Row:
    outbox_id: int
    idempotency_key: str
    system: str
    entity: str
    record_key: str
    target_values: dict[str, Any]
    method: str
    path: str
    body: str
    send_generation: int
    attempts: int
    state: str

    @property
    def header_key(self) -> str:
        """The Idempotency-Key header: a new generation only after a proven non-application."""
        return f"{self.idempotency_key}-{self.send_generation}"


COLUMNS = (
    "outbox_id, idempotency_key, system, entity, record_key, target_values, method, path, "
    "body, send_generation, attempts, state"
)


def _rows(cursor: psycopg.Cursor[Any]) -> list[Row]:
    return [Row(*row) for row in cursor.fetchall()]


def insert_planned(
    conn: psycopg.Connection[Any],
    writes: list[Write],
    run_id: str,
    held: dict[str, str] | None = None,
) -> int:
    """Store every write as `planned` in one transaction; known intents are left alone.
    A write whose idempotency key is in `held` is stored `held` with that reason instead."""
    held = held or {}
    inserted = 0
    with conn.transaction(), conn.cursor() as cur:
        for w in writes:
            cur.execute(
                """insert into rev.outbox (idempotency_key, system, entity, record_key, entity_ref,
                       fields, finding_id, finding_ids, canonical_values, target_values, method,
                       path, body, planned_run_id, state, held_reason, held_at)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s,
                           %s, %s, case when %s then now() end)
                   on conflict do nothing""",
                (
                    w.idempotency_key,
                    w.system,
                    w.entity,
                    w.record_key,
                    w.entity_ref,
                    sorted(w.target_values),
                    w.finding_ids[0] if w.finding_ids else None,
                    w.finding_ids,
                    json.dumps(w.canonical_values),
                    json.dumps(w.target_values),
                    w.method,
                    w.path,
                    w.body,
                    run_id,
                    "held" if w.idempotency_key in held else "planned",
                    held.get(w.idempotency_key),
                    w.idempotency_key in held,
                ),
            )
            inserted += cur.rowcount
    return inserted


def claim(
    conn: psycopg.Connection[Any],
    system: str,
    entity: str,
    run_id: str,
    limit: int,
    ids: list[int] | None = None,
) -> list[Row]:
    """Mark up to `limit` rows `sent` (attempts + 1) before any of them goes out.

    `sent` rows left by a crash are claimed again: the sender then proves, by Idempotency-Key
    or by reading the target, that a resend cannot apply twice. Rows that failed in this run
    wait for the next run.
    """
    with conn.transaction():
        cur = conn.execute(
            f"""update rev.outbox set state = 'sent', attempts = attempts + 1,
                       sent_at = now(), updated_at = now(), last_run_id = %(run)s
                where outbox_id in (
                    select outbox_id from rev.outbox
                    where system = %(system)s and entity = %(entity)s
                      and (%(ids)s::bigint[] is null or outbox_id = any(%(ids)s::bigint[]))
                      and (state in ('planned', 'sent')
                           or (state = 'failed' and last_run_id is distinct from %(run)s))
                    order by outbox_id limit %(limit)s
                    for update skip locked)
                returning {COLUMNS}""",
            {"system": system, "entity": entity, "run": run_id, "limit": limit, "ids": ids},
        )
        return sorted(_rows(cur), key=lambda r: r.outbox_id)


def acknowledge(conn: psycopg.Connection[Any], row: Row, status: int, note: str | None) -> None:
    conn.execute(
        """update rev.outbox set state = 'acknowledged', response_status = %s, last_error = %s,
               acknowledged_at = now(), updated_at = now()
           where outbox_id = %s and state = 'sent'""",
        (status, note, row.outbox_id),
    )


def fail(
    conn: psycopg.Connection[Any],
    row: Row,
    status: int | None,
    error: str,
    max_attempts: int,
) -> str:
    """`failed`, or `dead` once attempts are used up. A definitive answer (a 4xx the target may
    have stored under the header key) moves the row to a new send generation."""
    definitive = status is not None and 400 <= status < 500 and status != 429
    found = conn.execute(
        """update rev.outbox set
               state = case when attempts >= %s then 'dead' else 'failed' end,
               response_status = %s, last_error = left(%s, 2000), updated_at = now(),
               send_generation = send_generation + case when %s then 1 else 0 end
           where outbox_id = %s returning state""",
        (max_attempts, status, error, definitive, row.outbox_id),
    ).fetchone()
    return str(found[0]) if found else "failed"


def to_verify(
    conn: psycopg.Connection[Any],
    system: str,
    entity: str,
    run_id: str,
    ids: list[int] | None = None,
) -> list[Row]:
    """Acknowledged rows from earlier runs: the ones this run reads back (or exactly `ids`)."""
    cur = conn.execute(
        f"""select {COLUMNS} from rev.outbox
            where system = %(system)s and entity = %(entity)s and state = 'acknowledged'
              and (case when %(ids)s::bigint[] is null
                        then last_run_id is distinct from %(run)s
                        else outbox_id = any(%(ids)s::bigint[]) end)
            order by outbox_id""",
        {"system": system, "entity": entity, "run": run_id, "ids": ids},
    )
    return _rows(cur)


def verified(conn: psycopg.Connection[Any], row: Row) -> None:
    conn.execute(
        """update rev.outbox set state = 'verified', verified_at = now(), last_error = null,
               updated_at = now()
           where outbox_id = %s and state = 'acknowledged'""",
        (row.outbox_id,),
    )


def not_applied(conn: psycopg.Connection[Any], row: Row, error: str, max_attempts: int) -> str:
    """The target acknowledged the write but does not hold it: plan it again under a new
    generation (a new Idempotency-Key), or give up when attempts are used up."""
    found = conn.execute(
        """update rev.outbox set
               state = case when attempts >= %s then 'dead' else 'planned' end,
               send_generation = send_generation + 1, last_error = left(%s, 2000),
               updated_at = now()
           where outbox_id = %s and state = 'acknowledged' returning state""",
        (max_attempts, error, row.outbox_id),
    ).fetchone()
    return str(found[0]) if found else "acknowledged"


def replay(
    conn: psycopg.Connection[Any], ids: list[int] | None = None, system: str | None = None
) -> int:
    """Dead rows back to `planned` with fresh attempts and a new generation, on request.
    A dead row whose record has a newer write in flight stays dead."""
    cur = conn.execute(
        """update rev.outbox as o set state = 'planned', attempts = 0,
               send_generation = send_generation + 1, updated_at = now(),
               last_error = 'replayed on request: ' || coalesce(last_error, '')
           where state = 'dead'
             and (%(ids)s::bigint[] is null or outbox_id = any(%(ids)s::bigint[]))
             and (%(system)s::text is null or system = %(system)s::text)
             and not exists (
                 select 1 from rev.outbox as l
                 where l.system = o.system and l.entity = o.entity
                   and l.record_key = o.record_key and l.state = any(%(live)s))""",
        {"ids": ids, "system": system, "live": list(LIVE)},
    )
    return cur.rowcount


def states(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    """Rows per target and state."""
    found: dict[str, dict[str, int]] = {}
    for system, entity, state, count in conn.execute(
        "select system, entity, state, count(*) from rev.outbox group by 1, 2, 3 order by 1, 2, 3"
    ):
        found.setdefault(f"{system}.{entity}", {})[state] = count
    return found
