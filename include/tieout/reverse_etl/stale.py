"""Writes that depend on a source that failed to extract this run are not planned.

A target whose system failed is skipped whole (no verify, no send: its API is down and its
findings are last night's), and a write to any other target is dropped when a value it carries
comes from a failed source, or when it corrects a finding reconcile marked stale. Nothing about
them enters the outbox, so the night the source answers again plans each once, under the same
idempotency key: nothing is sent twice. Writes already in the outbox keep their state.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import psycopg

from tieout.config import Config, Target
from tieout.reverse_etl.plan import Write

log = logging.getLogger("tieout.reverse_etl")


def failure_note(streams: list[dict[str, Any]]) -> str:
    first = streams[0]
    return (
        f"{first['source']} failed to extract in this run "
        f"({', '.join(s['stream'] for s in streams)}: {first['error']}; "
        f"failing since run {first['failing_since_run_id']})"
    )


def stale_targets(
    targets: list[Target], failed: dict[str, list[dict[str, Any]]]
) -> dict[tuple[str, str], str]:
    """(system, entity) -> why the target is skipped, for the targets whose system failed."""
    return {
        (t.system, t.entity): failure_note(failed[t.system]) for t in targets if t.system in failed
    }


def drop_stale_writes(
    conn: psycopg.Connection[Any],
    config: Config,
    writes: list[Write],
    failed: dict[str, list[dict[str, Any]]],
) -> tuple[list[Write], dict[str, int]]:
    """(the writes that stay, dropped writes counted per target and reason)."""
    if not failed or not writes:
        return writes, {}
    stale_ids = {
        int(row[0])
        for row in conn.execute(
            """select finding_id from recon.findings
               where status <> 'resolved' and stale_since is not null
                 and finding_id = any(%s)""",
            (sorted({i for w in writes for i in w.finding_ids}),),
        ).fetchall()
    }
    kept: list[Write] = []
    dropped: Counter[str] = Counter()
    for w in writes:
        entity = config.entities[w.entity]
        sources = sorted(
            {
                entity.fields[name].source_of_truth
                for name in w.canonical_values
                if name in entity.fields and entity.fields[name].source_of_truth in failed
            }
        )
        if w.system in failed:
            reason = f"{w.system} (the target) failed to extract"
        elif sources:
            reason = f"its value comes from {', '.join(sources)}, which failed to extract"
        elif stale_ids.intersection(w.finding_ids):
            reason = "it corrects a finding marked stale"
        else:
            kept.append(w)
            continue
        dropped[f"{w.system}.{w.entity}: {reason}"] += 1
    for what, count in sorted(dropped.items()):
        log.warning("reverse ETL: %d writes not planned to %s in this run", count, what)
    return kept, dict(dropped)
