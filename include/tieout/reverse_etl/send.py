"""Sending outbox rows to a target within its rate limit, each row on its own so a failing row
never blocks its batch. The HTTP client, its auth, budget and retry rule are tieout.http's.

A write is never sent without its row marked `sent` first, and never resent where a resend
could apply twice: Idempotency-Key where the target honours it, a read before writing elsewhere.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
import tenacity

from tieout.config import Source, Target
from tieout.health import metrics as health_metrics
from tieout.http import client as http_client
from tieout.http import connections
from tieout.http.auth import AuthError
from tieout.http.budget import LocalBudget
from tieout.http.client import CircuitOpen, Client, RequestFailed
from tieout.reverse_etl import mapping, outbox

FAILPOINT_ENV = "TIEOUT_REVERSE_ETL_FAILPOINT"
RATE_HEADROOM = 0.97  # a token bucket just under the limit never trips a fixed-window limiter
_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Crash tests: `TIEOUT_REVERSE_ETL_FAILPOINT=sent:3` kills the process (SIGKILL) the third
    time it passes `sent`. Unset, this does nothing."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point == name:
        _hits[name] += 1
        if _hits[name] >= int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)


class TargetClient(Client):
    """The shared client, counting the reads of reverse ETL apart from its writes."""

    reads = 0

    @property
    def writes(self) -> int:
        return self.counters.writes

    def read(self, url: str) -> dict[str, Any]:
        self.reads += 1
        _, record = self.get(url, check=lambda response: response.json())
        return record if isinstance(record, dict) else {}


def client_for(source: Source, target: Target) -> tuple[TargetClient, str]:
    """The client for one target, authenticated from the source's Airflow connection."""
    rate = target.rate_limit_rps or source.rate_limit.requests_per_second
    budget = LocalBudget(rate * RATE_HEADROOM, capacity=1.0)
    label = f"reverse_etl {target.system}.{target.entity}"
    return http_client.connect(
        source, connections.get(source.connection_id), budget, label, TargetClient
    )


@dataclass
class Sent:
    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def read_record(client: TargetClient, base_url: str, target: Target, row: outbox.Row) -> dict:
    return client.read(
        base_url + mapping.record_path(target.read_path or target.path, row.record_key)
    )


def merged_body(target: Target, record: dict[str, Any], row: outbox.Row) -> str:
    """A full-record PUT: the record as read, minus server stamps, with the intended values."""
    full = {k: v for k, v in record.items() if k not in ("modified_at", "updated_at", "updated")}
    for name, value in row.target_values.items():
        node = full
        *parents, leaf = mapping.field_paths(target.body)[name]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return mapping.body_text(full)


def send_one(
    client: TargetClient, base_url: str, target: Target, row: outbox.Row, conn: psycopg.Connection
) -> str:
    url = base_url + row.path
    if target.idempotency_header:
        headers = {target.idempotency_header: row.header_key}
        response = client.write(row.method, url, row.body, headers, idempotent=True)
        failpoint("sent")
        if response.status_code >= 300:
            raise RequestFailed(
                f"HTTP {response.status_code}: {response.text[:300]}", response.status_code
            )
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        outbox.acknowledge(
            conn, row, response.status_code, "replayed by the target" if replayed else None
        )
        return "replayed" if replayed else "sent"
    # no Idempotency-Key: the client never resends the write itself, but a write answered
    # 5xx or not at all starts over from the read, which finds out whether it landed
    for attempt in retry_unacknowledged(client):
        with attempt:
            if target.read_before_write or target.merge_current:
                record = read_record(client, base_url, target, row)
                if not mapping.holds(target, record, row.target_values):
                    note = "target already held the values; nothing sent"
                    outbox.acknowledge(conn, row, 200, note)
                    return "already_held"
                body = merged_body(target, record, row) if target.merge_current else row.body
            else:
                body = row.body
            response = client.write(row.method, url, body, {}, idempotent=False)
    failpoint("sent")
    if response.status_code >= 300:
        raise RequestFailed(
            f"HTTP {response.status_code}: {response.text[:300]}", response.status_code
        )
    outbox.acknowledge(conn, row, response.status_code, None)
    return "sent"


def unacknowledged(error: BaseException) -> bool:
    """A write that failed without the target refusing it: a 5xx, or no answer at all."""
    return (
        isinstance(error, RequestFailed)
        and error.method not in (None, "GET")
        and (error.status is None or error.status >= 500)
    )


def retry_unacknowledged(client: TargetClient) -> tenacity.Retrying:
    """Up to `max_retries` more tries of read and write after an unacknowledged write, with
    the client's backoff; a failed read, any other failure, or the last one is raised as is."""
    settings = client.settings
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(unacknowledged),
        stop=tenacity.stop_after_attempt(settings.max_retries + 1),
        wait=lambda state: client.backoff(state.attempt_number - 1),
        sleep=client.sleep,
        reraise=True,
    )


def send_target(
    conn: psycopg.Connection[Any],
    target: Target,
    run_id: str,
    client: TargetClient,
    base_url: str,
    batch_size: int,
    max_attempts: int,
    ids: list[int] | None = None,
) -> Sent:
    """Claim and send every due row of one target (or only `ids`), batch by batch, each row
    isolated."""
    sent = Sent()
    started = time.monotonic()
    while rows := outbox.claim(conn, target.system, target.entity, run_id, batch_size, ids):
        for row in rows:
            failpoint("claimed")
            sent.rows += 1
            try:
                outcome = send_one(client, base_url, target, row, conn)
            except (RequestFailed, CircuitOpen, AuthError, mapping.MappingError, ValueError) as exc:
                status = getattr(exc, "status", None)
                outcome = outbox.fail(conn, row, status, str(exc), max_attempts)
            sent.outcomes[outcome] += 1
            failpoint("recorded")
    sent.seconds = time.monotonic() - started
    return sent


def record_metrics(
    run_id: str, target: Target, client: TargetClient, sent: Sent, url: str | None
) -> None:
    """The target's row in ops.integration_metrics: its client's requests (read-backs and
    writes), rows sent, and the share of rows that ended failed or dead (its quarantine)."""
    failed = sent.outcomes.get("failed", 0) + sent.outcomes.get("dead", 0)
    row = health_metrics.measured(
        client.request_log,
        records=sent.rows,
        quarantined=failed,
        duration_s=sent.seconds,
        circuit_open=client.consecutive_failures >= client.settings.circuit_breaker_failures,
    )
    # rows fail one by one (send_target isolates them): the quarantine share judges them
    health_metrics.record_safely(
        url, run_id, "reverse_etl", target.system, target.entity, "success", row
    )
