"""Extract one (source, stream): resume or start a pass, fetch pages ahead in a thread, load them
in batches, then judge schema drift and, if asked, deletions. The function the DAG and CLI call.

It must never run the same stream twice at once, nor advance the cursor past rows not committed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tieout import db, runs
from tieout.config import NoAuth, Source, Stream, load_source, parse_duration
from tieout.extract import deletions, load, paginate, schema_drift
from tieout.extract.records import cursor_param
from tieout.extract.writer import Writer
from tieout.health import metrics as health_metrics
from tieout.http import client as http_client
from tieout.http import connections
from tieout.http.budget import PostgresBudget, RequestBudget
from tieout.http.client import CircuitOpen, Client, RequestFailed
from tieout.paths import config_dir

PREFETCH_PAGES = 4
# a run's quarantined share is judged once it has read this many records (fewer say little)
QUARANTINE_JUDGED_FROM = 10
Progress = Callable[[int], None]
log = logging.getLogger(__name__)


class StreamBusy(RuntimeError):
    """Another process is extracting the same stream right now."""


class StreamMisconfigured(RuntimeError):
    """The stream's YAML does not fit what the API serves; retrying cannot help."""


class MostlyQuarantined(RuntimeError):
    """More of a run's records were quarantined than the stream's max_quarantined_share."""


def source_config(source_name: str) -> Source:
    return load_source(config_dir() / "sources" / f"{source_name}.yml")


def extract_stream(
    source_name: str,
    stream_name: str,
    run_id: str,
    full_refresh: bool = False,
    *,
    deletion_scan: bool | None = None,
    url: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Extract one stream into raw and return its figures (what ops.extract_runs holds)."""
    source = source_config(source_name)
    return extract(
        source,
        source.stream(stream_name),
        run_id,
        full_refresh,
        deletion_scan=deletion_scan,
        url=url,
        progress=progress,
    )


@dataclass
class Context:
    source: Source
    stream: Stream
    run_id: str
    client: Client
    base_url: str
    zone: ZoneInfo
    url: str  # the warehouse


def client_for(
    source: Source,
    stream: Stream,
    budget: RequestBudget,
    connection: connections.Connection | None = None,
) -> tuple[Client, str]:
    """The HTTP client of one stream run and the base URL it talks to."""
    conn_info = connection or _connection(source)
    return http_client.connect(source, conn_info, budget, label=f"{source.name}.{stream.name}")


def _connection(source: Source) -> connections.Connection:
    """The source's connection; a source without auth may have none (the YAML's base_url)."""
    try:
        return connections.get(source.connection_id)
    except connections.ConnectionMissing:
        if isinstance(source.auth, NoAuth):
            return connections.Connection(source.connection_id)
        raise


def reset_state(source_name: str, stream_names: list[str], url: str | None = None) -> list[str]:
    """Forget where each stream resumes and its cursor (its ops.sync_state row); raw rows stay.
    The next run starts a new pass from the beginning. Returns the streams that had state."""
    url = url or db.warehouse_url()
    reset = []
    with db.connect(url, autocommit=True) as conn:
        for stream_name in stream_names:
            lock_stream(conn, source_name, stream_name)
            try:
                deleted = conn.execute(
                    "delete from ops.sync_state where source = %s and stream = %s",
                    (source_name, stream_name),
                ).rowcount
            finally:
                conn.execute(
                    "select pg_advisory_unlock(hashtextextended(%s, 0))",
                    (f"tieout.extract:{source_name}.{stream_name}",),
                )
            if deleted:
                reset.append(stream_name)
    return reset


def extract(
    source: Source,
    stream: Stream,
    run_id: str,
    full_refresh: bool = False,
    *,
    deletion_scan: bool | None = None,
    url: str | None = None,
    progress: Progress | None = None,
    connection: connections.Connection | None = None,
) -> dict[str, Any]:
    url = db.role_url("loader", url)
    started = time.monotonic()
    with (
        db.connect(url, autocommit=True) as control,
        db.connect(url, autocommit=True) as conn,
        runs.record_stage(run_id, f"extract:{source.name}.{stream.name}", url) as figures,
    ):
        lock_stream(control, source.name, stream.name)
        # a rerun of a run whose process was killed takes its stream back
        control.execute(
            """update ops.extract_runs set status = 'running', abandoned_at = null,
                   abandoned_by = null
               where run_id = %s and source = %s and stream = %s and status = 'abandoned'""",
            (run_id, source.name, stream.name),
        )
        budget = PostgresBudget(
            control,
            source.name,
            source.rate_limit.requests_per_second,
            float(source.rate_limit.burst),
        )
        client, base_url = client_for(source, stream, budget, connection)
        zone = ZoneInfo(stream.incremental.cursor_timezone if stream.incremental else "UTC")
        ctx = Context(source, stream, run_id, client, base_url, zone, url)
        try:
            with load.loading_mode():
                result = _extract(ctx, conn, full_refresh, progress)
            scan = stream.deletion_scan if deletion_scan is None else deletion_scan
            if scan:
                try:
                    deleted = deletions.scan(ctx.client, conn, source, stream, run_id, base_url)
                except deletions.DeletionScanRefused as refused:
                    deleted, result["deletion_scan"] = 0, str(refused)
                with conn.transaction(), conn.cursor() as cur:
                    load.add_run_counters(
                        cur, run_id, source.name, stream.name, {"deleted": deleted}
                    )
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            failed = _finish_run(conn, ctx, "failed", started, error, None, None)
            _summarize(conn, run_id)
            _record_metrics(conn, ctx, failed, "failed", error, isinstance(exc, CircuitOpen))
            raise
        finally:
            client.close()
        figures.update(_finish_run(conn, ctx, "success", started, None, result, result["changes"]))
        _summarize(conn, run_id)
        _record_metrics(conn, ctx, figures, "success", None, False)
    return dict(figures)


def _record_metrics(
    conn: psycopg.Connection[Any],
    ctx: Context,
    figures: dict[str, Any],
    status: str,
    error: str | None,
    circuit_open: bool,
) -> None:
    """The stream's row in ops.integration_metrics (see tieout.health.metrics); never raises."""
    source, stream = ctx.source.name, ctx.stream.name
    try:
        cursor = health_metrics.newest_cursor(conn, source, stream)
    except psycopg.Error:
        cursor = None
    row = health_metrics.measured(
        ctx.client.request_log,
        records=int(figures.get("records") or 0),
        quarantined=int(figures.get("quarantined") or 0),
        duration_s=float(figures.get("wall_s") or 0),
        newest_cursor=cursor,
        circuit_open=circuit_open,
        error=error,
    )
    health_metrics.record_safely(ctx.url, ctx.run_id, "extract", source, stream, status, row)


def lock_stream(control: psycopg.Connection[Any], source: str, stream: str) -> None:
    row = control.execute(
        "select pg_try_advisory_lock(hashtextextended(%s, 0))",
        (f"tieout.extract:{source}.{stream}",),
    ).fetchone()
    if not row or not row[0]:
        raise StreamBusy(f"{source}.{stream} is being extracted by another process; try later")


def _start_request(ctx: Context, state: dict[str, Any], full_refresh: bool) -> tuple[dict, Any]:
    """The first request of a new pass and the cursor it starts from."""
    stream, source = ctx.stream, ctx.source
    params: dict[str, Any] = dict(stream.params)
    since = None
    if stream.incremental and not full_refresh and state.get("cursor_value"):
        lookback = parse_duration(
            stream.lookback if stream.lookback is not None else source.lookback
        )
        since = cursor_param(state["cursor_value"], lookback, stream.incremental.format, ctx.zone)
        params[stream.incremental.param] = since
    paginator = stream.paginator or source.paginator
    page_size = stream.page_size or source.page_size
    return paginate.first_request(paginator, ctx.base_url + stream.path, params, page_size), since


def _extract(
    ctx: Context, conn: psycopg.Connection[Any], full_refresh: bool, progress: Progress | None
) -> dict[str, Any]:
    source, stream, run_id = ctx.source, ctx.stream, ctx.run_id
    load.ensure_raw_table(conn, source.name, stream.name)
    load.prepare_session(conn)
    state = load.read_state(conn, source.name, stream.name)
    paginator = stream.paginator or source.paginator
    resumed = bool(state.get("resume")) and not (
        full_refresh and not state.get("pass_full_refresh")
    )
    if resumed:
        request = paginate.resumed_request(
            state["resume"], ctx.base_url, ctx.base_url + stream.path, paginator
        )
        pass_full = bool(state.get("pass_full_refresh"))
    else:
        request, since = _start_request(ctx, state, full_refresh)
        pass_full = full_refresh or since is None
        with conn.transaction(), conn.cursor() as cur:
            load.write_state(
                cur,
                source.name,
                stream.name,
                run_id,
                {
                    "pass_id": uuid.uuid4().hex,
                    "pass_from": since,
                    "pass_full_refresh": pass_full,
                    "pass_cursor_max": None,
                    "pass_records": 0,
                    "pass_pages": 0,
                    "pass_api_total": None,
                    "resume": paginate.saved_request(request, ctx.base_url),
                },
            )
            load.add_run_counters(cur, run_id, source.name, stream.name, {})
            cur.execute(
                """update ops.extract_runs set status = 'running', full_refresh = %s,
                   error = null, finished_at = null
                   where run_id = %s and source = %s and stream = %s""",
                (full_refresh, run_id, source.name, stream.name),
            )
        state = load.read_state(conn, source.name, stream.name)

    observer = schema_drift.Observer()
    pass_cursor_max = state.get("pass_cursor_max")
    pass_records = int(state.get("pass_records") or 0)
    pass_pages = int(state.get("pass_pages") or 0)
    api_total = state.get("pass_api_total")
    totals = {"records": 0, "rows": 0, "unchanged": 0, "quarantined": 0, "pages": 0, "bytes": 0}
    sent = {"retries": 0, "http_429": 0}
    judged = {"records": 0, "quarantined": 0}
    clock = time.monotonic()

    def new_batch() -> load.Batch:
        return load.Batch(stream.primary_key, stream.cursor_field, ctx.zone, observer, run_id)

    def commit(batch: load.Batch) -> None:
        nonlocal pass_cursor_max, pass_records, pass_pages, api_total, clock
        _judge_quarantine(conn, ctx, batch, judged)
        if batch.staged.duplicates:
            log.warning(
                "%s.%s: %d records dropped whose key came twice in one page (one version "
                "kept), e.g. keys %s",
                source.name,
                stream.name,
                batch.staged.duplicates,
                ", ".join(batch.staged.duplicate_keys),
            )
        if batch.cursor_max is not None:
            value = batch.cursor_max.isoformat(timespec="microseconds")
            if pass_cursor_max is None or value > pass_cursor_max:
                pass_cursor_max = value
        pass_records += batch.records
        pass_pages += batch.pages
        if batch.api_total is not None:
            api_total = batch.api_total
        update: dict[str, Any] = {
            "resume": paginate.saved_request(batch.next_request, ctx.base_url),
            "pass_cursor_max": pass_cursor_max,
            "pass_records": pass_records,
            "pass_pages": pass_pages,
            "pass_api_total": api_total,
        }
        if batch.last_page:
            update.update(_completed_state(state, pass_cursor_max, pass_full))
        counters = ctx.client.counters
        now = time.monotonic()
        deltas = {
            "retries": counters.retries - sent["retries"],
            "http_429": counters.http_429 - sent["http_429"],
            "duration_s": now - clock,
        }
        writer.submit(batch, update, deltas)
        sent["retries"], sent["http_429"], clock = counters.retries, counters.http_429, now

    def count_unsent() -> None:
        """Retries and 429s of requests no committed batch covered (a failing stream's)."""
        counters = ctx.client.counters
        deltas = {
            "retries": counters.retries - sent["retries"],
            "http_429": counters.http_429 - sent["http_429"],
        }
        if any(deltas.values()):
            with conn.transaction(), conn.cursor() as cur:
                load.add_run_counters(cur, run_id, source.name, stream.name, deltas)
            sent["retries"], sent["http_429"] = counters.retries, counters.http_429
        totals["records"] += batch.records
        totals["pages"] += batch.pages
        totals["bytes"] += batch.bytes

    batch = new_batch()
    writer = Writer(ctx.url, source.name, stream.name, run_id)
    try:
        # the fetch thread only pages (HTTP and a syntax scan); records are parsed here,
        # while the next request is on its way
        for scanned in prefetch(
            lambda: paginate.pages(
                ctx.client, paginator, request, stream.records_path, scan_only=True
            )
        ):
            page = paginate.parsed_page(scanned, stream.records_path, observer.shape)
            batch.add(page)
            if progress is not None:
                progress(len(page.records))
            if batch.last_page or batch.full(ctx.source.commit_every_rows):
                commit(batch)
                batch = new_batch()
        if batch.pages:
            commit(batch)
    except (RequestFailed, CircuitOpen) as exc:
        try:
            if batch.pages:
                commit(batch)
        finally:
            writer.close()
        count_unsent()
        if isinstance(exc, RequestFailed) and exc.body is not None:
            _quarantine_page(conn, ctx, exc)
        raise
    except paginate.RecordsNotFound as exc:
        writer.close()
        count_unsent()
        raise StreamMisconfigured(
            f"{source.name}.{stream.name}: configuration error: {exc}. Fix records_path of "
            f"stream {stream.name!r} in sources/{source.name}.yml (nothing was retried or "
            "quarantined)"
        ) from None
    except BaseException:
        with contextlib.suppress(BaseException):
            writer.close()  # what was handed over is complete; let it commit
        with contextlib.suppress(BaseException):
            count_unsent()
        raise
    written = writer.close()
    totals["rows"], totals["unchanged"] = written.rows, written.unchanged
    totals["quarantined"] = written.quarantined

    with conn.transaction():
        changes = schema_drift.record_changes(
            conn, source.name, stream.name, run_id, observer, complete_pass=pass_full
        )
    total_diff = None
    if api_total is not None:
        total_diff = int(api_total) - pass_records
    return {
        **totals,
        "resumed": resumed,
        "full_refresh": pass_full,
        "api_total": api_total,
        "total_diff": total_diff,
        "schema_changes": len(changes),
        "changes": changes,
    }


def _judge_quarantine(
    conn: psycopg.Connection[Any], ctx: Context, batch: load.Batch, judged: dict[str, int]
) -> None:
    """Stop a run that quarantines most of what it reads (a primary key no record has, a
    wrong field type): before the batch commits, so the cursor stays where it was and the
    records load once the YAML is fixed. The batch's quarantined records are kept."""
    judged["records"] += batch.records
    judged["quarantined"] += len(batch.quarantine)
    limit = ctx.stream.max_quarantined_share
    if limit is None:
        limit = ctx.source.max_quarantined_share
    records, quarantined = judged["records"], judged["quarantined"]
    if records < QUARANTINE_JUDGED_FROM or quarantined <= limit * records:
        return
    source, stream = ctx.source.name, ctx.stream.name
    with conn.transaction(), conn.cursor() as cur:
        load.add_quarantine(cur, source, stream, ctx.run_id, batch.quarantine)
    reason, times = Counter(reason for reason, *_ in batch.quarantine).most_common(1)[0]
    raise MostlyQuarantined(
        f"{source}.{stream}: {quarantined} of {records} records read were quarantined "
        f"({quarantined / records:.0%}), more than max_quarantined_share ({limit:.0%}) allows; "
        f"most often ({times} in the last batch): {reason}. Check the stream's primary_key "
        f"and fields in sources/{source}.yml; the last batch was not loaded and the cursor "
        "did not move, so a run after the fix loads it"
    )


def _completed_state(
    state: dict[str, Any], pass_cursor_max: str | None, pass_full: bool
) -> dict[str, Any]:
    old = state.get("cursor_value")
    if pass_cursor_max is None:
        cursor = old
    elif old is None or pass_full:
        cursor = pass_cursor_max
    else:
        cursor = max(old, pass_cursor_max)
    return {
        "cursor_value": cursor,
        "last_completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pass_id": None,
        "resume": None,
    }


def _quarantine_page(conn: psycopg.Connection[Any], ctx: Context, exc: RequestFailed) -> None:
    """A page that never parsed: keep its text for a human, then let the stream fail."""
    body = exc.body or ""
    with conn.transaction():
        conn.execute(
            """insert into ops.quarantine
                   (source, stream, reason, raw_text, raw_hash, first_run_id, last_run_id)
               values (%s, %s, %s, %s, md5(%s), %s, %s)
               on conflict (source, stream, raw_hash) do update set
                   last_run_id = excluded.last_run_id, times_seen = ops.quarantine.times_seen + 1,
                   last_seen_at = now()""",
            (
                ctx.source.name,
                ctx.stream.name,
                "page body never parsed: " + str(exc)[:500],
                body[:1_000_000],
                body[:1_000_000],
                ctx.run_id,
                ctx.run_id,
            ),
        )


def prefetch(make: Callable[[], Iterator[paginate.Page]]) -> Iterator[paginate.Page]:
    """Fetch pages in a thread, up to PREFETCH_PAGES ahead of the loader."""
    pending: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_PAGES)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for page in make():
                while not stop.is_set():
                    try:
                        pending.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pending.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            pending.put(exc)

    thread = threading.Thread(target=work, name="tieout-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _finish_run(
    conn: psycopg.Connection[Any],
    ctx: Context,
    status: str,
    started: float,
    error: str | None,
    result: dict[str, Any] | None,
    changes: list[schema_drift.Change] | None,
) -> dict[str, Any]:
    source, stream = ctx.source.name, ctx.stream.name
    with conn.transaction(), conn.cursor() as cur:
        load.add_run_counters(cur, ctx.run_id, source, stream, {})
        cur.execute(
            """update ops.extract_runs set status = %s, error = %s, finished_at = now(),
                   api_total = coalesce(%s, api_total), total_diff = coalesce(%s, total_diff),
                   schema_changes = schema_changes + %s
               where run_id = %s and source = %s and stream = %s
               returning records, rows, unchanged, pages, bytes, retries, http_429,
                         quarantined, duplicates, deleted, api_total, total_diff, schema_changes,
                         duration_s""",
            (
                status,
                error,
                result.get("api_total") if result else None,
                result.get("total_diff") if result else None,
                len(changes or []),
                ctx.run_id,
                source,
                stream,
            ),
        )
        row = cur.fetchone()
        names = [d.name for d in cur.description or []]
    figures: dict[str, Any] = dict(zip(names, row or (), strict=False))
    figures["duration_s"] = round(float(figures.get("duration_s") or 0), 3)
    figures["wall_s"] = round(time.monotonic() - started, 3)
    figures["source"], figures["stream"] = source, stream
    if result is not None:
        figures["resumed"] = result["resumed"]
        figures["full_refresh"] = result["full_refresh"]
        if "deletion_scan" in result:
            figures["deletion_scan"] = result["deletion_scan"]
        figures["changes"] = [
            {"field": c.field, "change": c.change, "old_type": c.old_type, "new_type": c.new_type}
            for c in changes or []
        ]
    return figures


def _summarize(conn: psycopg.Connection[Any], run_id: str) -> None:
    """Keep one `extract` row in ops.stage_runs summing every stream of the run so far."""
    with conn.transaction():
        conn.execute(
            """
            with per_stream as (
                select * from ops.extract_runs where run_id = %(run_id)s
            ), per_source as (
                select source, sum(rows) as rows from per_stream group by source
            )
            insert into ops.stage_runs (run_id, stage, status, figures, started_at, finished_at)
            select %(run_id)s, 'extract',
                   case when bool_or(status = 'failed') then 'failed'
                        when bool_or(status = 'running') then 'running'
                        when bool_or(status = 'abandoned') then 'abandoned' else 'success' end,
                   jsonb_build_object(
                       'streams', count(*),
                       'failed', count(*) filter (where status = 'failed'),
                       'records', sum(records), 'rows', sum(rows),
                       'quarantined', sum(quarantined), 'duplicates', sum(duplicates),
                       'retries', sum(retries),
                       'http_429', sum(http_429), 'schema_changes', sum(schema_changes),
                       'rows_by_source',
                       (select jsonb_object_agg(source, rows) from per_source)),
                   min(started_at),
                   case when bool_or(status = 'running') then null else max(finished_at) end
            from per_stream
            on conflict (run_id, stage) do update set
                status = excluded.status, figures = excluded.figures,
                finished_at = excluded.finished_at
            """,
            {"run_id": run_id},
        )
