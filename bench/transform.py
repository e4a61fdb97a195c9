"""Benchmark of the transform stage: a full dbt build of a sandbox company, then an incremental
rerun after one day of `tieout sandbox mutate`.

    bench/transform.py --scale 1

Raw data reaches the warehouse through `tieout extract` when it is available (`--via extract`),
or straight from the sandbox's storage (`--via storage`, the default: it measures dbt alone and
needs no services). The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tieout.db import embedded, migrate
from tieout.sandbox.storage import RESOURCES
from tieout.transform import build

RAW_TABLE = """
create table if not exists raw.{table} (
    _pk text not null, _record jsonb not null, _record_hash text not null,
    _extracted_at timestamptz not null, _run_id text not null, _source_url text
)
"""


def tieout(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "tieout"), *args], check=True)


def load_from_storage(url: str, sandbox_dir: Path, run_id: str, since: dict[str, int]) -> int:
    """Append every record changed since the last load to raw.*, as extract would (COPY)."""
    rows = 0
    with psycopg.connect(url) as conn:
        for system, streams in RESOURCES.items():
            db = sqlite3.connect(sandbox_dir / f"{system}.sqlite")
            for stream in streams:
                table = f"{system}__{stream}"
                conn.execute(RAW_TABLE.format(table=table))  # type: ignore[arg-type]
                last = since.get(table, -1)
                found = db.execute(
                    f"select pk, updated_ms, doc from {stream} where updated_ms > ? order by seq",
                    (last,),
                ).fetchall()
                with conn.cursor().copy(
                    f"copy raw.{table} (_pk, _record, _record_hash, _extracted_at, _run_id, "
                    "_source_url) from stdin"
                ) as copy:
                    for pk, updated_ms, doc in found:
                        digest = hashlib.md5(doc.encode()).hexdigest()
                        copy.write_row((str(pk), doc, digest, "now", run_id, f"storage://{table}"))
                        since[table] = max(since.get(table, -1), updated_ms)
                rows += len(found)
            db.close()
    return rows


def fresh_database() -> str:
    configured = os.environ.get("TIEOUT_BENCH_DATABASE_URL")
    if configured:
        return configured
    server, _ = embedded.start()
    name = f"tieout_bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')  # type: ignore[arg-type]
    url = server.url(name)
    with psycopg.connect(url) as conn:
        migrate.migrate(conn)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=1, help="days of mutate before the rerun")
    parser.add_argument("--via", choices=("storage", "extract"), default="storage")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    sandbox_dir = Path(tempfile.mkdtemp(prefix="tieout-bench-sandbox-"))
    os.environ["TIEOUT_SANDBOX_DIR"] = str(sandbox_dir)
    url = fresh_database()
    os.environ["TIEOUT_DATABASE_URL"] = url
    figures: dict[str, Any] = {"scale": args.scale, "via": args.via}
    since: dict[str, int] = {}

    tieout("sandbox", "seed", "--scale", str(args.scale))
    figures["raw_rows_full"] = load_raw(args.via, url, sandbox_dir, "bench_full", since)

    started = time.monotonic()
    full = build(run_id="bench__full", full_refresh=True, url=url)
    figures["full_build_s"] = round(time.monotonic() - started, 2)
    figures["canonical_rows"] = full["canonical_rows"]

    started = time.monotonic()
    build(run_id="bench__noop", url=url)
    figures["noop_rerun_s"] = round(time.monotonic() - started, 2)

    tieout("sandbox", "mutate", "--days", str(args.days))
    figures["raw_rows_incremental"] = load_raw(args.via, url, sandbox_dir, "bench_incr", since)
    started = time.monotonic()
    incremental = build(run_id="bench__incremental", url=url)
    figures["incremental_s"] = round(time.monotonic() - started, 2)
    figures["incremental_rows_affected"] = {
        k: v for k, v in incremental["rows_affected"].items() if not k.startswith("stg_")
    }
    figures["incremental_share"] = round(figures["incremental_s"] / figures["full_build_s"], 3)

    if not args.keep and not os.environ.get("TIEOUT_BENCH_DATABASE_URL"):
        server, _ = embedded.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')  # type: ignore[arg-type]
    print(json.dumps(figures))


def load_raw(via: str, url: str, sandbox_dir: Path, run_id: str, since: dict[str, int]) -> int:
    if via == "extract":
        tieout("sandbox", "up")
        tieout("extract")
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "select sum(n_live_tup) from pg_stat_user_tables where schemaname = 'raw'"
            ).fetchone()
        return int(row[0] or 0) if row else 0
    return load_from_storage(url, sandbox_dir, run_id, since)


if __name__ == "__main__":
    main()
