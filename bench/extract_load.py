"""Extract-load benchmark: N records of a sandbox stream end to end, next to its two ceilings.

Prints rows/s, MB/s and peak RSS for four phases, each in its own process so peak RSS is
the phase's own:

  fetch   page through the API with the extract client and its parser only, nothing loaded
          (the ceiling the API sets)
  e2e     tieout.extract end to end into a fresh raw table (fetch + encode + COPY + commit)
  paging  HTTP and the fetch thread's syntax scan only, records unparsed (shown for context)
  loader  the loader fed page bodies from memory (parse + key + hash + encode + COPY +
          commit, no HTTP)
  copy    a plain COPY of the same rows, encoded before the clock and held in memory, into a
          fresh table with the raw layout, identity and index (the ceiling PostgreSQL sets)

After one untimed warm-up fetch, fetch and e2e alternate `--repeat` times (default 3) and the
median of each is reported, with every run listed. The last line is one JSON object. Usage:

  .venv/bin/python bench/extract_load.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

SOURCE, STREAM, TABLE = "shop", "orders", "orders"
PAGE_SIZE = 250  # the most the shop API serves per page


def peak_rss_mb() -> float:
    """The phase's own peak RSS (the extract and its writer thread are one process)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sandbox_dir(records: int) -> Path:
    from tieout.paths import state_dir

    return state_dir() / "bench" / f"sandbox-{records}"


def prepare_sandbox(records: int) -> dict[str, str]:
    """Seed (once, cached) a sandbox with `records` shop orders and start it on free ports."""
    from tieout_sandbox import SYSTEMS, credentials, generate, server

    directory = sandbox_dir(records)
    if not (directory / "shop.sqlite").exists() or not (directory / "seeded").exists():
        started = time.monotonic()
        generate.seed(directory, scale=records / 10_000, seed_value=1)
        (directory / "seeded").write_text("ok")
        print(f"seeded {records} orders in {time.monotonic() - started:.0f}s", file=sys.stderr)
    if not all(s["healthy"] for s in server.status(directory).values()):
        ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
        server.up(directory, ports=ports, timeout=120)
    return credentials.sandbox_connections(directory)


def bench_source() -> Any:
    """The shipped shop source, with the rate limit lifted: we measure machines, not policy."""
    from tieout.config import RateLimit
    from tieout.extract.run import source_config

    source = source_config(SOURCE)
    return source.model_copy(
        update={
            "page_size": PAGE_SIZE,
            "rate_limit": RateLimit(requests_per_second=100_000, burst=1000, max_concurrency=1),
        }
    )


def fresh_database() -> str:
    from tieout.db import embedded, migrate

    server, _ = embedded.start()
    name = f"tieout_bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = server.url(name)
    with psycopg.connect(url) as conn:
        migrate.migrate(conn)
    return url


def drop_database(url: str) -> None:
    from tieout.db import embedded

    server, _ = embedded.start()
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


# ---------------------------------------------------------------- phases (child processes)


def page_through(parse: bool) -> dict[str, Any]:
    """Page through the whole stream with the extract's client, loading nothing.

    parse: the extract's own parse at its cheapest, pages decoded into the shape of the first
    one (an observer sees only pages that do not fit). Without: HTTP and the syntax scan the
    fetch thread does, records left unparsed.
    """
    from tieout.extract import load, paginate
    from tieout.extract.run import client_for
    from tieout.extract.schema_drift import Observer
    from tieout.http.budget import LocalBudget

    source = bench_source()
    stream = source.stream(STREAM)
    client, base_url = client_for(source, stream, LocalBudget(100_000, 1000))
    paginator = stream.paginator or source.paginator
    request = paginate.first_request(paginator, base_url + stream.path, {}, PAGE_SIZE)
    observer = Observer()
    started = time.monotonic()
    count = size = 0
    with load.loading_mode():  # the same process settings the extract runs with
        for page in paginate.pages(
            client,
            paginator,
            request,
            stream.records_path,
            lambda: observer.shape,
            scan_only=not parse,
        ):
            if parse and page.shape is None:
                observer.observe_page(page.records)
            count += len(page.records)
            size += page.bytes
    seconds = time.monotonic() - started
    return {"rows": count, "bytes": size, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_e2e(records: int, url: str) -> dict[str, Any]:
    from tieout.extract.run import extract

    source = bench_source()
    started = time.monotonic()
    figures = extract(source, source.stream(STREAM), f"bench-{uuid.uuid4().hex[:6]}", True, url=url)
    seconds = time.monotonic() - started
    return {
        "rows": figures["rows"],
        "bytes": figures["bytes"],
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


POOL_RECORDS = 100_000


def page_pool(records: int) -> list[bytes]:
    """Page bodies as the shop API serves them, from the sandbox's own stored orders."""
    with sqlite3.connect(sandbox_dir(records) / "shop.sqlite") as db:
        docs = [
            row[0].encode()
            for row in db.execute("select doc from orders order by seq limit ?", (POOL_RECORDS,))
        ]
    return [
        b'{"orders":[' + b",".join(docs[i : i + PAGE_SIZE]) + b"]}"
        for i in range(0, len(docs), PAGE_SIZE)
    ]


def memory_pages(records: int, pool: list[bytes]) -> Iterator[bytes]:
    """`records` records' worth of page bodies from the pool, re-keyed each round (every
    `"id":` gets a round prefix, so order, line and customer ids stay consistent and new).
    Costs ~0.1 us a record."""
    fed, round_number = 0, 0
    while fed < records:
        prefix = b'"id":' + (str(round_number).encode() if round_number else b"")
        for body in pool:
            if fed >= records:
                return
            yield body.replace(b'"id":', prefix) if round_number else body
            fed += PAGE_SIZE
        round_number += 1


def memory_batches(records: int, run_id: str, pool: list[bytes]) -> Iterator[Any]:
    """The extract's own path from page bodies to batches for the writer: parse and key."""
    from zoneinfo import ZoneInfo

    from tieout.extract import load, paginate
    from tieout.extract.schema_drift import Observer

    source = bench_source()
    stream = source.stream(STREAM)
    observer = Observer()

    def new_batch() -> Any:
        return load.Batch(
            stream.primary_key, stream.cursor_field, ZoneInfo("UTC"), observer, run_id
        )

    batch = new_batch()
    for number, body in enumerate(memory_pages(records, pool)):
        _, page_records, texts, strict, shape = paginate.read_page(
            body, stream.records_path, observer.shape
        )
        url = f"memory://shop/orders?page={number}"
        page = paginate.Page(
            {}, url, page_records, {}, len(body), None, time.time(), strict, texts, shape
        )
        batch.add(page)
        if batch.full(source.commit_every_rows):
            yield batch
            batch = new_batch()
    if batch.rows:
        yield batch


def fresh_raw_table(conn: psycopg.Connection[Any], stream: str) -> None:
    from tieout.extract import load

    conn.execute(f'drop table if exists raw."{SOURCE}__{stream}"')  # type: ignore[arg-type]
    load.ensure_raw_table(conn, SOURCE, stream)


def phase_loader(records: int, url: str) -> dict[str, Any]:
    """Feed the loader page bodies held in memory, with the writer the extract uses: parse,
    key, hash and encode here, COPY and commit in the writer thread. No HTTP."""
    from tieout.extract import load
    from tieout.extract.writer import Writer

    run_id = "bench-loader"
    pool = page_pool(records)
    with psycopg.connect(url, autocommit=True) as conn:
        fresh_raw_table(conn, "loader")
        load.prepare_session(conn)
        started = time.monotonic()
        writer = Writer(url, SOURCE, "loader", run_id)
        size = 0
        with load.loading_mode():  # as tieout.extract.run does around a pass
            for batch in memory_batches(records, run_id, pool):
                size += batch.size
                writer.submit(batch, {}, {})
            writer.close()
        seconds = time.monotonic() - started
        return loaded(conn, "loader", size, seconds)


def phase_copy(records: int, url: str) -> dict[str, Any]:
    """A plain binary COPY of exactly the rows the loader writes, encoded before the clock
    starts and held in memory, into a fresh raw table (same layout, identity and index),
    committed every `commit_every_rows` like the loader: the ceiling PostgreSQL sets."""
    from tieout.extract import load

    pool = page_pool(records)
    batches = [b.staged.encoded()[2] for b in memory_batches(records, "bench-copy", pool)]
    size = sum(len(row) for rows in batches for row in rows)
    table = load.raw_table(SOURCE, "copy")
    with psycopg.connect(url, autocommit=True) as conn:
        fresh_raw_table(conn, "copy")
        load.prepare_session(conn)
        started = time.monotonic()
        for rows in batches:
            with conn.transaction(), conn.cursor() as cur:
                load.copy_rows(cur, table, rows)
        seconds = time.monotonic() - started
        return loaded(conn, "copy", size, seconds)


def loaded(conn: psycopg.Connection[Any], stream: str, size: int, seconds: float) -> dict[str, Any]:
    """A phase's figures, its rows counted in the table it loaded."""
    row = conn.execute(f'select count(*) from raw."{SOURCE}__{stream}"').fetchone()  # type: ignore[arg-type]
    return {
        "rows": row[0] if row else 0,
        "bytes": size,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def checkpoint(url: str) -> None:
    """Write out the previous phase's dirty buffers now, so the next phase does not pay for
    them (needs superuser or pg_checkpoint; skipped without)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("checkpoint")
    except psycopg.Error as error:
        print(f"no checkpoint between phases: {error}", file=sys.stderr)


def run_phase(
    name: str, records: int, url: str, env: dict[str, str], quiet: bool = False
) -> dict[str, Any]:
    checkpoint(url)
    out = subprocess.run(
        [sys.executable, __file__, "--records", str(records), "--phase", name, "--url", url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    result["mb_per_s"] = result["bytes"] / 1e6 / result["seconds"] if result["seconds"] else 0.0
    if not quiet:
        print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--phase", choices=["fetch", "paging", "e2e", "loader", "copy"])
    parser.add_argument("--url", default=None)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fetch and e2e runs, alternating (median shown)"
    )
    args = parser.parse_args()

    if args.phase:
        phases = {
            # paging alone is not the comparison the target names: it shows the API's own ceiling
            "fetch": lambda: page_through(parse=True),
            "paging": lambda: page_through(parse=False),
            "e2e": lambda: phase_e2e(args.records, args.url),
            "loader": lambda: phase_loader(args.records, args.url),
            "copy": lambda: phase_copy(args.records, args.url),
        }
        print(json.dumps(phases[args.phase]()))
        return

    from tieout_sandbox import server

    connections = prepare_sandbox(args.records)
    env = {f"AIRFLOW_CONN_TIEOUT_{s.upper()}": uri for s, uri in connections.items()}
    url = fresh_database()
    runs: dict[str, list[dict[str, Any]]] = {"fetch": [], "e2e": []}
    try:
        # one untimed pass warms the sandbox's storage (its SQLite files in the page cache);
        # then fetch and e2e alternate, so both meet the same passing load
        run_phase("fetch", args.records, url, env, quiet=True)
        for _ in range(args.repeat):
            runs["fetch"].append(run_phase("fetch", args.records, url, env))
            reset_stream(url)
            runs["e2e"].append(run_phase("e2e", args.records, url, env))
        results = {name: median_run(found) for name, found in runs.items()}
        results["paging"] = run_phase("paging", args.records, url, env)
        results["loader"] = run_phase("loader", args.records, url, env)
        results["copy"] = run_phase("copy", args.records, url, env)
    finally:
        server.down(sandbox_dir(args.records))
        if not args.keep_db:
            drop_database(url)
    print(f"{SOURCE}.{STREAM}, {args.records} records, page size {PAGE_SIZE}")
    if args.repeat > 1:
        for name, found in runs.items():
            rates = ", ".join(f"{r['rows_per_s']:.0f}" for r in found)
            print(f"{name} runs (rows/s): {rates}; the median is shown")
    print(f"{'phase':<8} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'MB/s':>7} {'peak RSS MB':>12}")
    for name, r in results.items():
        print(
            f"{name:<8} {r['rows']:>9} {r['seconds']:>8.1f} {r['rows_per_s']:>9.0f} "
            f"{r['mb_per_s']:>7.1f} {r['peak_rss_mb']:>12.0f}"
        )
    e2e, fetch = results["e2e"], results["fetch"]
    print(f"end to end = {e2e['rows_per_s'] / fetch['rows_per_s']:.0%} of the fetch-only rate")
    summary = {
        "records": args.records,
        "stream": f"{SOURCE}.{STREAM}",
        "repeat": args.repeat,
        "rows_per_s": round(e2e["rows_per_s"]),
        "mb_per_s": round(e2e["mb_per_s"], 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["e2e"])),
        "fetch_only_rows_per_s": round(fetch["rows_per_s"]),
        "e2e_share_of_fetch": round(e2e["rows_per_s"] / fetch["rows_per_s"], 3),
        "e2e_runs_rows_per_s": [round(r["rows_per_s"]) for r in runs["e2e"]],
        "fetch_runs_rows_per_s": [round(r["rows_per_s"]) for r in runs["fetch"]],
        "paging_only_rows_per_s": round(results["paging"]["rows_per_s"]),
        "loader_rows_per_s": round(results["loader"]["rows_per_s"]),
        "loader_peak_rss_mb": round(results["loader"]["peak_rss_mb"]),
        "copy_rows_per_s": round(results["copy"]["rows_per_s"]),
        "rows_loaded": e2e["rows"],
    }
    print(json.dumps(summary))


def median_run(found: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(found, key=lambda r: r["rows_per_s"])[len(found) // 2]


def reset_stream(url: str) -> None:
    """A fresh raw table and no saved state, so each e2e run loads every record anew."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'drop table if exists raw."{SOURCE}__{STREAM}"')  # type: ignore[arg-type]
        conn.execute(
            "delete from ops.sync_state where source = %s and stream = %s", (SOURCE, STREAM)
        )


if __name__ == "__main__":
    main()
