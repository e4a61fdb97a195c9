"""Sending outbox rows to a target within its rate limit, each row on its own so a failing row
never blocks its batch. Reuses extract's HTTP client (auth, budget, backoff, Retry-After).

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
import requests

from tieout.config import Source, Target
from tieout.extract import auth as auth_module
from tieout.extract import connections
from tieout.extract.auth import AuthError
from tieout.extract.http import (
    CircuitOpen,
    Client,
    LocalBudget,
    RequestFailed,
    Settings,
    backoff_delay,
    retry_after_seconds,
)
from tieout.health import metrics as health_metrics
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
    """extract's Client plus writes: 429 and Retry-After always retried (nothing was applied);
    5xx and timeouts retried only when the request carries an Idempotency-Key."""

    writes = 0
    reads = 0

    def read(self, url: str) -> dict[str, Any]:
        self.reads += 1
        _, record = self.get(url, check=lambda response: response.json())
        return record if isinstance(record, dict) else {}

    def write(
        self, method: str, url: str, body: str, headers: dict[str, str], idempotent: bool
    ) -> requests.Response:
        settings = self.settings
        attempt = throttled = 0
        reauthenticated = False
        while True:
            self.budget.acquire()
            self.counters.requests += 1
            self.writes += 1
            delay: float | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    data=body.encode(),
                    headers={"Content-Type": "application/json", **headers},
                    timeout=(settings.connect_timeout_s, settings.read_timeout_s),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                status, what = None, f"{type(exc).__name__} on {method} {url}"
            else:
                status = response.status_code
                if status == 429:
                    self.counters.http_429 += 1
                    throttled += 1
                    if throttled > max(20, settings.max_retries * 4):
                        raise RequestFailed(f"{self.label}: still rate limited on {url}", 429)
                    delay = retry_after_seconds(response.headers.get("Retry-After"))
                    if delay is not None:
                        self.budget.penalize(delay)
                    self.counters.retries += 1
                    self.sleep(delay if delay is not None else 1.0)
                    continue
                if status == 401 and hasattr(self.auth, "invalidate") and not reauthenticated:
                    self.auth.invalidate()
                    reauthenticated = True
                    continue
                if status < 500:
                    self.consecutive_failures = 0
                    return response
                what = f"HTTP {status} on {method} {url}"
            if not idempotent:
                raise RequestFailed(self._redact(f"{self.label}: {what}"), status)
            self._failed(what)
            if attempt >= settings.max_retries:
                raise RequestFailed(
                    self._redact(f"{self.label}: gave up after {attempt + 1} attempts; {what}"),
                    status,
                )
            attempt += 1
            self.counters.retries += 1
            self.sleep(
                backoff_delay(
                    attempt - 1, settings.backoff_base_s, settings.backoff_max_s, self.rng
                )
            )


def client_for(source: Source, target: Target) -> tuple[TargetClient, str]:
    """The client for one target, authenticated from the source's Airflow connection."""
    conn_info = connections.get(source.connection_id)
    base_url = conn_info.base_url() or source.base_url
    timeout = (source.connect_timeout_s, source.timeout_s)
    settings = Settings(
        connect_timeout_s=source.connect_timeout_s,
        read_timeout_s=source.timeout_s,
        max_retries=source.max_retries,
        backoff_base_s=source.backoff_base_s,
        backoff_max_s=source.backoff_max_s,
        circuit_breaker_failures=source.circuit_breaker_failures,
        secrets=conn_info.secrets(),
    )
    rate = target.rate_limit_rps or source.rate_limit.requests_per_second
    budget = LocalBudget(rate * RATE_HEADROOM, capacity=1.0)
    request_auth = auth_module.build(source.auth, conn_info, base_url, timeout)
    label = f"reverse_etl {target.system}.{target.entity}"
    return TargetClient(request_auth, settings, budget, label=label), base_url


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
    settings = client.settings
    for attempt in range(settings.max_retries + 1):
        if target.read_before_write or target.merge_current:
            record = read_record(client, base_url, target, row)
            if not mapping.holds(target, record, row.target_values):
                note = "target already held the values; nothing sent"
                outbox.acknowledge(conn, row, 200, note)
                return "already_held"
            body = merged_body(target, record, row) if target.merge_current else row.body
        else:
            body = row.body
        try:
            response = client.write(row.method, url, body, {}, idempotent=False)
        except RequestFailed as exc:
            if exc.status is not None and exc.status < 500 or attempt == settings.max_retries:
                raise
            client.sleep(
                backoff_delay(attempt, settings.backoff_base_s, settings.backoff_max_s, client.rng)
            )
            continue
        failpoint("sent")
        if response.status_code >= 300:
            raise RequestFailed(
                f"HTTP {response.status_code}: {response.text[:300]}", response.status_code
            )
        outbox.acknowledge(conn, row, response.status_code, None)
        return "sent"
    raise RequestFailed(f"{client.label}: gave up on {url}")


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
