"""Extract-load benchmark: N records of a sandbox stream end to end, next to its two ceilings.

Prints rows/s, MB/s and peak RSS for four phases, each in its own process so peak RSS is
the phase's own:

  fetch   page through the API with the extract client only (the ceiling the API sets)
  e2e     tieout.extract end to end into a fresh raw table (fetch + encode + COPY + commit)
  loader  the loader fed pages from memory (encode + COPY + dedupe + commit, no HTTP)
  copy    a plain COPY of the same rows, pre-encoded in memory, into a table with the raw
          layout and index (the ceiling PostgreSQL sets)

The last line is one JSON object. Usage:

  .venv/bin/python bench/extract_load.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

SOURCE, STREAM, TABLE = "shop", "orders", "orders"
PAGE_SIZE = 250  # the most the shop API serves per page


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sandbox_dir(records: int) -> Path:
    from tieout.paths import state_dir

    return state_dir() / "bench" / f"sandbox-{records}"


def prepare_sandbox(records: int) -> dict[str, str]:
    """Seed (once, cached) a sandbox with `records` shop orders and start it on free ports."""
    from tieout.sandbox import SYSTEMS, credentials, generate, server

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


def phase_fetch(records: int) -> dict[str, Any]:
    from tieout.extract import paginate
    from tieout.extract.http import LocalBudget
    from tieout.extract.run import client_for

    source = bench_source()
    stream = source.stream(STREAM)
    budget = LocalBudget(100_000, 1000)
    client, base_url = client_for(source, stream, budget)
    paginator = stream.paginator or source.paginator
    request = paginate.first_request(paginator, base_url + stream.path, {}, PAGE_SIZE)
    started = time.monotonic()
    count = size = 0
    for page in paginate.pages(client, paginator, request, stream.records_path):
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


def _sample_pages(url: str, limit: int) -> list[tuple[list[dict[str, Any]], list[str]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'select _record, _record::text from raw."{SOURCE}__{STREAM}" order by _seq limit %s',
            (limit,),
        ).fetchall()
    return [
        ([r[0] for r in rows[i : i + PAGE_SIZE]], [r[1] for r in rows[i : i + PAGE_SIZE]])
        for i in range(0, len(rows), PAGE_SIZE)
    ]


def phase_loader(records: int, url: str) -> dict[str, Any]:
    """Feed the loader pages held in memory: a pool of real records, re-keyed per round, with
    the same background writer the extract uses (encode overlaps with PostgreSQL)."""
    from zoneinfo import ZoneInfo

    from tieout.extract import load
    from tieout.extract.paginate import Page
    from tieout.extract.schema_drift import Observer

    source = bench_source()
    stream = source.stream(STREAM)
    pool = _sample_pages(url, 50_000)
    run_id = "bench-loader"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'drop table if exists raw."{SOURCE}__loader"')
        load.ensure_raw_table(conn, SOURCE, "loader")
        load.prepare_session(conn)
        observer = Observer()
        writer = load.Writer(conn, SOURCE, "loader", run_id)
        batch = load.Batch(stream.primary_key, stream.cursor_field, ZoneInfo("UTC"), observer)
        fed = size = 0
        round_number = 0
        started = time.monotonic()
        while fed < records:
            for chunk, texts in pool:
                if fed >= records:
                    break
                page_records = [{**r, "id": f"{r['id']}-{round_number}"} for r in chunk]
                # the text as an API would serve it: the record re-keyed for this round
                page_texts = [
                    t.replace('"id": ', f'"round": {round_number}, "id": ', 1) for t in texts
                ]
                page = Page({}, "memory", page_records, {}, 0, None, time.time(), page_texts)
                batch.add(page)
                fed += len(page_records)
                if batch.full(source.commit_every_rows):
                    size += batch.size
                    writer.submit(batch, {}, {})
                    batch = load.Batch(
                        stream.primary_key, stream.cursor_field, ZoneInfo("UTC"), observer
                    )
            round_number += 1
        size += batch.size
        writer.submit(batch, {}, {})
        writer.close()
        seconds = time.monotonic() - started
        loaded = conn.execute(f'select count(*) from raw."{SOURCE}__loader"').fetchone()
    return {
        "rows": loaded[0] if loaded else 0,
        "bytes": size,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_copy(records: int, url: str) -> dict[str, Any]:
    """COPY the loaded rows, already encoded as COPY text in memory, into a plain table."""
    with psycopg.connect(url) as conn:
        with conn.cursor(name="read") as cur:
            cur.itersize = 20_000
            cur.execute(
                f"""select _pk, _record::text, _record_hash
                    from raw."{SOURCE}__{STREAM}" order by _seq"""
            )
            lines = [
                f"{pk}\t{text.replace(chr(92), chr(92) * 2)}\t{digest}\n"
                for pk, text, digest in cur
            ]
        conn.commit()
        size = sum(len(line) for line in lines)
        # a logged table with the raw layout and its index: the same work minus tieout's own
        conn.execute("drop table if exists raw.bench_copy_target")
        conn.execute(
            """create table raw.bench_copy_target (
                   _seq bigint generated always as identity, _pk text, _record jsonb,
                   _record_hash text, _extracted_at timestamptz default now())"""
        )
        conn.execute("create index on raw.bench_copy_target (_pk, _seq)")
        conn.commit()
        started = time.monotonic()
        with (
            conn.cursor() as cur,
            cur.copy("copy raw.bench_copy_target (_pk, _record, _record_hash) from stdin") as copy,
        ):
            for start in range(0, len(lines), 5000):
                copy.write("".join(lines[start : start + 5000]))
        conn.commit()
        seconds = time.monotonic() - started
    return {"rows": len(lines), "bytes": size, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run_phase(name: str, records: int, url: str, env: dict[str, str]) -> dict[str, Any]:
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
    print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--phase", choices=["fetch", "e2e", "loader", "copy"])
    parser.add_argument("--url", default=None)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    if args.phase:
        phases = {
            "fetch": lambda: phase_fetch(args.records),
            "e2e": lambda: phase_e2e(args.records, args.url),
            "loader": lambda: phase_loader(args.records, args.url),
            "copy": lambda: phase_copy(args.records, args.url),
        }
        print(json.dumps(phases[args.phase]()))
        return

    from tieout.sandbox import server

    connections = prepare_sandbox(args.records)
    env = {f"AIRFLOW_CONN_TIEOUT_{s.upper()}": uri for s, uri in connections.items()}
    url = fresh_database()
    try:
        results = {name: run_phase(name, args.records, url, env) for name in ("fetch", "e2e")}
        results["loader"] = run_phase("loader", args.records, url, env)
        results["copy"] = run_phase("copy", args.records, url, env)
    finally:
        server.down(sandbox_dir(args.records))
        if not args.keep_db:
            drop_database(url)
    print(f"{SOURCE}.{STREAM}, {args.records} records, page size {PAGE_SIZE}")
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
        "rows_per_s": round(e2e["rows_per_s"]),
        "mb_per_s": round(e2e["mb_per_s"], 1),
        "peak_rss_mb": round(e2e["peak_rss_mb"]),
        "fetch_only_rows_per_s": round(fetch["rows_per_s"]),
        "e2e_share_of_fetch": round(e2e["rows_per_s"] / fetch["rows_per_s"], 3),
        "loader_rows_per_s": round(results["loader"]["rows_per_s"]),
        "loader_peak_rss_mb": round(results["loader"]["peak_rss_mb"]),
        "copy_rows_per_s": round(results["copy"]["rows_per_s"]),
        "rows_loaded": e2e["rows"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
