"""The receiver: POST /webhooks/<source> verifies, records each event once in
ops.webhook_events, and asks the debouncer for that source's extract.

It must never log or store a body, a signature or a secret, and never trigger for a refused
delivery. Rows are written by one thread in group commits, so a burst costs one commit per batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tieout import db
from tieout.config import Source, Webhook
from tieout.http import connections
from tieout.webhooks import trigger, verify

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
BATCH_MAX = 500


@dataclass
class Hook:
    """One source that accepts webhooks, with its secrets once they are found."""

    source: Source
    spec: Webhook
    secrets: list[str] = field(default_factory=list, repr=False)

    def load_secrets(self) -> list[str]:
        """From the Airflow connection's extra (`webhook_secret`, and `<field>_previous`
        while a secret rotates); looked up again while none is found."""
        if not self.secrets:
            try:
                conn = connections.get(self.spec.connection_id or self.source.connection_id)
            except connections.ConnectionMissing:
                return []
            names = (self.spec.secret_field, f"{self.spec.secret_field}_previous")
            self.secrets = [str(conn.extra[n]) for n in names if conn.extra.get(n)]
        return self.secrets


@dataclass
class Row:
    source: str
    status: str
    reason: str | None = None
    event: verify.Event | None = None
    event_id: str | None = None


class Recorder:
    """One writer thread: takes every row queued, writes them in one transaction.

    An accepted row that conflicts with an earlier accepted (source, event id) is written as
    rejected 'replayed' instead; the caller's future says which happened.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.queue: queue.Queue[tuple[Row, concurrent.futures.Future[bool]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="webhook-recorder", daemon=True)
        self.thread.start()

    def submit(self, row: Row) -> concurrent.futures.Future[bool]:
        future: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self.queue.put((row, future))
        return future

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        conn = None
        stopping = False
        while not stopping:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                if conn is None or conn.closed:
                    conn = db.connect(self.url, application_name="tieout-webhooks")
                results = self._write(conn, [row for row, _ in batch])
            except Exception as error:  # noqa: BLE001 - answer 503; the sender retries
                log.error("webhooks: cannot record %d event(s): %s", len(batch), error)
                if conn is not None:
                    conn.close()
                conn = None
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), accepted in zip(batch, results, strict=True):
                future.set_result(accepted)
        if conn is not None:
            conn.close()

    @staticmethod
    def _write(conn: Any, rows: list[Row]) -> list[bool]:
        """Two statements per batch, whatever its size: the accepted rows (a conflict with an
        earlier accepted id, or a repeat inside the batch, is a replay), then every refusal."""
        candidates = [
            (n, row) for n, row in enumerate(rows) if row.status == "accepted" and row.event
        ]
        results = [False] * len(rows)
        with conn.transaction(), conn.cursor() as cur:
            inserted: set[str] = set()
            if candidates:
                cur.execute(
                    "insert into ops.webhook_events"
                    " (source, event_id, event_type, object_id, status, signed_at)"
                    " select s, e, t, o, 'accepted', to_timestamp(a)"
                    " from unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                    " %s::float8[]) as i(s, e, t, o, a)"
                    " on conflict (source, event_id) where status = 'accepted' do nothing"
                    " returning source || ':' || event_id",
                    columns([(r.source, *event_columns(r.event)) for _, r in candidates]),
                )
                inserted = {found for (found,) in cur.fetchall()}
            refused: list[tuple[Any, ...]] = []
            for n, row in enumerate(rows):
                event = row.event
                key = f"{row.source}:{event.event_id}" if event else ""
                if row.status == "accepted" and key in inserted:
                    inserted.discard(key)  # a second copy in this batch is a replay
                    results[n] = True
                    continue
                reason = verify.REPLAYED if row.status == "accepted" else row.reason
                if event is not None:
                    refused.append((row.source, *event_columns(event), reason))
                else:
                    refused.append((row.source, row.event_id, None, None, None, reason))
            if refused:
                cur.execute(
                    "insert into ops.webhook_events"
                    " (source, event_id, event_type, object_id, status, signed_at, reason)"
                    " select s, e, t, o, 'rejected', to_timestamp(a), r"
                    " from unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                    " %s::float8[], %s::text[]) as i(s, e, t, o, a, r)",
                    columns(refused),
                )
        return results


def event_columns(event: verify.Event | None) -> tuple[Any, ...]:
    assert event is not None
    return (event.event_id, event.event_type, event.object_id, event.signed_at)


def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


@dataclass
class Metrics:
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)

    def as_text(self, runs: int, failures: int) -> str:
        lines = [
            "# HELP tieout_webhook_events_accepted_total Events accepted, per source.",
            "# TYPE tieout_webhook_events_accepted_total counter",
        ]
        lines += [
            f'tieout_webhook_events_accepted_total{{source="{s}"}} {n}'
            for s, n in sorted(self.accepted.items())
        ]
        lines += [
            "# HELP tieout_webhook_events_rejected_total Refused deliveries, per source, reason.",
            "# TYPE tieout_webhook_events_rejected_total counter",
        ]
        lines += [
            f'tieout_webhook_events_rejected_total{{source="{s}",reason="{r}"}} {n}'
            for (s, r), n in sorted(self.rejected.items())
        ]
        lines += [
            "# TYPE tieout_webhook_extract_runs_total counter",
            f"tieout_webhook_extract_runs_total {runs}",
            "# TYPE tieout_webhook_extract_failures_total counter",
            f"tieout_webhook_extract_failures_total {failures}",
        ]
        return "\n".join(lines) + "\n"


def mark_triggered(url: str) -> Any:
    """After a run: the accepted events it covers get its run id and time."""

    def mark(source: str, run_id: str, fired_at: float) -> None:
        with db.connect(url, autocommit=True, application_name="tieout-webhooks") as conn:
            conn.execute(
                "update ops.webhook_events set triggered_at = now(), trigger_run = %s"
                " where source = %s and status = 'accepted' and triggered_at is null"
                " and received_at <= %s",
                (run_id, source, datetime.fromtimestamp(fired_at, UTC)),
            )

    return mark


def create_app(
    sources: dict[str, Source],
    url: str | None = None,
    runner: trigger.Runner | None = None,
    mode: str = "none",
) -> FastAPI:
    """The receiver for every source with a `webhook:` block. `runner` None: record only."""
    url = db.role_url("loader", url)
    hooks = {
        name: Hook(source, source.webhook)
        for name, source in sources.items()
        if source.webhook is not None
    }
    metrics = Metrics()
    recorder = Recorder(url)
    debouncer = (
        trigger.Debouncer(
            runner,
            delay_s=lambda name: hooks[name].spec.debounce_s,
            on_run=mark_triggered(url),
        )
        if runner is not None
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if debouncer is not None:
            debouncer.close()
        recorder.close()

    app = FastAPI(
        title="tieout webhooks", version="1.0.0", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.recorder = recorder
    app.state.debouncer = debouncer
    app.state.metrics = metrics

    async def refuse(
        source: str, reason: str, detail: str, status: int, event_id: str | None = None
    ) -> JSONResponse:
        metrics.rejected[(source, reason)] += 1
        log.warning("webhooks: refused a %s delivery: %s (%s)", source, reason, detail)
        if source in hooks:
            try:
                await asyncio.wrap_future(
                    recorder.submit(Row(source, "rejected", reason, event_id=event_id))
                )
            except Exception:  # noqa: BLE001 - the refusal stands; the row is best effort
                log.error("webhooks: could not record a refusal for %s", source)
        return JSONResponse({"error": reason, "detail": detail}, status_code=status)

    async def receive(request: Request) -> Response:
        """The hot path, as a plain Starlette route: FastAPI's parameter solving would cost
        about 0.5 ms of CPU per event here, a third of the receiver's budget."""
        source = str(request.path_params["source"])
        hook = hooks.get(source)
        if hook is None:
            name = source if source in sources else "unknown"
            return await refuse(name, verify.UNKNOWN_SOURCE, "no webhook config", 404)
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return await refuse(source, verify.MALFORMED, "body over 1 MiB", 413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return await refuse(source, verify.MALFORMED, "body over 1 MiB", 413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = verify.verify(hook.spec, hook.load_secrets(), body, headers)
        except verify.Rejected as rejected:
            status = 401 if rejected.reason in {verify.BAD_SIGNATURE, verify.NO_SECRET} else 400
            return await refuse(source, rejected.reason, rejected.detail, status, rejected.event_id)
        try:
            accepted = await asyncio.wrap_future(
                recorder.submit(Row(source, "accepted", event=event))
            )
        except Exception:  # noqa: BLE001 - not recorded: the sender should retry
            return JSONResponse({"error": "not recorded, retry"}, status_code=503)
        if not accepted:
            metrics.rejected[(source, verify.REPLAYED)] += 1
            log.warning(
                "webhooks: refused a %s delivery: replayed event %s", source, event.event_id
            )
            return JSONResponse(
                {"error": verify.REPLAYED, "detail": f"event {event.event_id} was seen before"},
                status_code=400,
            )
        metrics.accepted[source] += 1
        if debouncer is not None:
            all_streams = [stream.name for stream in hook.source.streams]
            debouncer.notify(
                source, trigger.streams_for(event.event_type, hook.spec.streams, all_streams)
            )
        return Response(
            b'{"received":' + json.dumps(event.event_id).encode() + b"}",
            media_type="application/json",
        )

    app.add_route("/webhooks/{source}", receive, methods=["POST"])

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "trigger": mode,
            "sources": sorted(hooks),
            "accepted": sum(metrics.accepted.values()),
            "rejected": {f"{s}.{r}": n for (s, r), n in sorted(metrics.rejected.items())},
            "extract_runs": debouncer.runs if debouncer else 0,
            "extract_failures": debouncer.failures if debouncer else 0,
            "pending": not debouncer.idle() if debouncer else False,
        }

    @app.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        runs = debouncer.runs if debouncer else 0
        failures = debouncer.failures if debouncer else 0
        return PlainTextResponse(metrics.as_text(runs, failures))

    return app
