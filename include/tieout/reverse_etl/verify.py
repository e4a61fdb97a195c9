"""Read each acknowledged write back from its target: `verified` only when the target holds the
intended values. An acknowledged write that did not land goes back to be sent again.

It never writes to a target and never marks a row verified on the target's word alone.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

from tieout.config import Target
from tieout.http.client import CircuitOpen, RequestFailed
from tieout.reverse_etl import mapping, outbox
from tieout.reverse_etl.send import TargetClient, read_record


def verify_target(
    conn: psycopg.Connection[Any],
    target: Target,
    run_id: str,
    client: TargetClient,
    base_url: str,
    max_attempts: int,
    ids: list[int] | None = None,
) -> Counter[str]:
    """Outcome counts: verified, resend (not applied), dead, unreadable (left for next run).
    With `ids`, exactly those acknowledged rows are read back, whichever run sent them."""
    outcomes: Counter[str] = Counter()
    for row in outbox.to_verify(conn, target.system, target.entity, run_id, ids):
        try:
            record = read_record(client, base_url, target, row)
        except (RequestFailed, CircuitOpen) as exc:
            if getattr(exc, "status", None) == 404:
                state = outbox.not_applied(
                    conn, row, "record not found at the target", max_attempts
                )
                outcomes["dead" if state == "dead" else "resend"] += 1
            else:
                outcomes["unreadable"] += 1
            continue
        missing = mapping.holds(target, record, row.target_values)
        if not missing:
            outbox.verified(conn, row)
            outcomes["verified"] += 1
            continue
        found = {name: mapping.held_value(target, record, name) for name in missing}
        error = f"acknowledged but not applied: target holds {found}"
        state = outbox.not_applied(conn, row, error, max_attempts)
        outcomes["dead" if state == "dead" else "resend"] += 1
    return outcomes
