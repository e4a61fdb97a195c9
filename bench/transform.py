"""Benchmark of the transform stage: a full dbt build of a sandbox company, then an incremental
rerun after one day of `tieout sandbox mutate`. The full build runs every node; reruns build and
test only what is downstream of new raw data.

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
import xxhash

from tieout.db import embedded, migrate
from tieout.transform import build
from tieout_sandbox.storage import RESOURCES

RAW_TABLE = """
create table if not exists raw.{table} (
    _seq bigint generated always as identity,
    _pk text not null, _record jsonb not null, _record_hash text not null,
    _extracted_at timestamptz not null, _run_id text not null, _source_url text,
    _deleted boolean not null default false
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
                        digest = xxhash.xxh3_128_hexdigest(doc.encode())
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
    name = f"tieout_bench_transform_{uuid.uuid4().hex[:6]}"
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
    parser.add_argument(
        "--check-full",
        action="store_true",
        help="after the reruns, rebuild everything and name every table the reruns left different",
    )
    parser.add_argument(
        "--more-days",
        type=int,
        default=0,
        help="days of mutate and rerun after the measured one (untimed; for --check-full)",
    )
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
    figures["truth_after_seed"] = check_against_truth(url, sandbox_dir)

    started = time.monotonic()
    noop = build(run_id="bench__noop", url=url)
    figures["noop_rerun_s"] = round(time.monotonic() - started, 2)
    figures["noop_plan"] = noop.get("plan")

    tieout("sandbox", "mutate", "--days", str(args.days))
    figures["raw_rows_incremental"] = load_raw(args.via, url, sandbox_dir, "bench_incr", since)
    started = time.monotonic()
    incremental = build(run_id="bench__incremental", url=url)
    figures["incremental_s"] = round(time.monotonic() - started, 2)
    figures["incremental_plan"] = incremental.get("plan")
    figures["nodes"] = {"full": full["nodes"], "incremental": incremental["nodes"]}
    figures["incremental_rows_affected"] = {
        k: v for k, v in incremental["rows_affected"].items() if not k.startswith("stg_")
    }
    figures["incremental_share"] = round(figures["incremental_s"] / figures["full_build_s"], 3)

    figures["truth"] = check_against_truth(url, sandbox_dir)
    for day in range(args.more_days):
        tieout("sandbox", "mutate", "--days", "1")
        load_raw(args.via, url, sandbox_dir, f"bench_more_{day}", since)
        build(run_id=f"bench__more_{day}", url=url)
    if args.more_days:
        figures["truth_after_more_days"] = check_against_truth(url, sandbox_dir)
    if args.check_full:
        figures["history_out_of_step"] = history_out_of_step(url)
        after_reruns = table_digests(url)
        build(run_id="bench__full_again", full_refresh=True, url=url)
        after_full = table_digests(url)
        figures["reruns_differ_from_full_build"] = sorted(
            table for table, digest in after_full.items() if after_reruns.get(table) != digest
        )
    if args.via == "extract":
        tieout("sandbox", "down")
    if not args.keep and not os.environ.get("TIEOUT_BENCH_DATABASE_URL"):
        server, _ = embedded.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')  # type: ignore[arg-type]
    print(json.dumps(figures))


def table_digests(url: str) -> dict[str, str]:
    """md5 of every table dbt builds, row by row in order. Left out: history tables (they
    accumulate by design) and the two lineage timestamps, _loaded_at (when a row was written)
    and _source_extracted_at (when the source version that last changed a canonical row was
    extracted: a later version with the same content does not rewrite the row)."""
    digests: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "select schemaname || '.' || tablename from pg_tables "
            "where schemaname in ('staging', 'intermediate', 'canonical', 'finance') "
            "and tablename not like '%_history' order by 1"
        ).fetchall()
        for (table,) in tables:
            row = conn.execute(
                "select md5(coalesce(string_agg(r, '|' order by r), '')) from "  # type: ignore[arg-type]
                f"(select (to_jsonb(t) - '_loaded_at' - '_source_extracted_at')::text as r "
                f"from {table} as t) as rows"
            ).fetchone()
            digests[table] = row[0] if row else ""
    return digests


HISTORIES = {
    "customers_history": "customer_id",
    "orders_history": "order_id",
    "invoices_history": "invoice_id",
}


def history_out_of_step(url: str) -> dict[str, int]:
    """Per snapshot, the rows where history and its canonical table disagree: a canonical row
    without a current version of the same content, or a current version of a row that is gone
    (0 everywhere when every run's snapshot took in exactly what changed)."""
    out: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for history, key in HISTORIES.items():
            source = "canonical." + history.removesuffix("_history")
            row = conn.execute(
                f"select count(*) from {source} as s full join "  # type: ignore[arg-type]
                f"(select * from canonical.{history} where dbt_valid_to is null) as h "
                f"on s.{key} = h.{key} where s._row_hash is distinct from h._row_hash"
            ).fetchone()
            out[history] = int(row[0]) if row else -1
    return out


def load_raw(via: str, url: str, sandbox_dir: Path, run_id: str, since: dict[str, int]) -> int:
    if via == "extract":
        from tieout_sandbox.credentials import sandbox_connections
        from tieout_sandbox.server import free_port_block

        if not since.get("_up"):
            tieout("sandbox", "up", "--base-port", str(free_port_block()))
            since["_up"] = 1
        for system, uri in sandbox_connections(sandbox_dir).items():
            os.environ[f"AIRFLOW_CONN_TIEOUT_{system.upper()}"] = uri
        tieout("extract", "--quiet", "--run-id", run_id)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "select sum(n_live_tup) from pg_stat_user_tables where schemaname = 'raw'"
            ).fetchone()
        return int(row[0] or 0) if row else 0
    return load_from_storage(url, sandbox_dir, run_id, since)


def check_against_truth(url: str, sandbox_dir: Path) -> dict[str, Any]:
    """The must-shows against the generator's ground truth: canonical counts equal the true
    entity counts, every spread identity is matched, every duplicate flagged, no merges."""
    truth = json.loads((sandbox_dir / "ground_truth.json").read_text())
    refs = sqlite3.connect(sandbox_dir / "generator.sqlite")
    with psycopg.connect(url) as conn:
        counts = {
            entity: conn.execute(f"select count(*) from canonical.{table}").fetchone()[0]  # type: ignore[index]
            for entity, table in (
                ("customer", "customers"),
                ("product", "products"),
                ("order", "orders"),
                ("order_line", "order_lines"),
                ("invoice", "invoices"),
                ("payment", "payments"),
            )
        }
        crosswalk = {
            (system, key): (customer_id, is_duplicate)
            for system, key, customer_id, is_duplicate in conn.execute(
                "select system, system_key, customer_id, is_duplicate "
                "from intermediate.int_customers_crosswalk"
            )
        }
        by_system = {
            entity: {
                (system, key): (entity_id, is_duplicate)
                for system, key, entity_id, is_duplicate in conn.execute(
                    f"select system, system_key, {entity}_id, is_duplicate "  # type: ignore[arg-type]
                    f"from intermediate.int_{entity}s_by_system"
                )
            }
            for entity in ("order", "invoice", "product")
        }
    gone = {
        (d["system"], str(d["keys"].get(d["system"])))
        for d in truth["divergences"]
        if d["kind"] == "missing_in_system" and d["entity"] == "customer"
    }
    spread = unmatched = merged = 0
    for customer_no, *ids in refs.execute(
        "select customer_no, crm_id, billing_id, shop_id from customers"
    ):
        expected = hashlib.md5(customer_no.encode()).hexdigest()
        for system, key in zip(("crm", "billing", "shop"), ids, strict=True):
            if key is None or (system, str(key)) in gone:
                continue
            spread += 1
            found = crosswalk.get((system, str(key)))
            if found is None or found[0] is None:
                unmatched += 1
            elif found[0] != expected:
                merged += 1
    duplicates = flagged = 0
    extras = extras_left_out = 0
    for d in truth["divergences"]:
        entity, system = d["entity"], d.get("system")
        lookup = crosswalk if entity == "customer" else by_system.get(entity, {})
        if d["kind"] == "duplicate_key":
            keys = [str(k) for k in d["keys"][system]]
            duplicates += 1
            rows = [lookup.get((system, k)) for k in keys]
            if (
                all(rows)
                and len({r[0] for r in rows if r}) == 1
                and sum(r[1] for r in rows if r) == 1
            ):
                flagged += 1
        elif d["kind"] == "extra_in_system":
            extras += 1
            row = lookup.get((system, str(d["keys"][system])))
            if row is not None and row[0] is None:
                extras_left_out += 1
    true_counts = truth["entities"]
    return {
        "counts_equal": counts == true_counts,
        "canonical": counts,
        "true": true_counts,
        "identities_spread": spread,
        "identities_unmatched": unmatched,
        "identities_merged_wrongly": merged,
        "duplicates_injected": duplicates,
        "duplicates_flagged": flagged,
        "extras_injected": extras,
        "extras_left_unmatched": extras_left_out,
    }


if __name__ == "__main__":
    main()
