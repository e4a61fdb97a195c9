"""Benchmark of the reconcile stage: N entities held by 3 systems with 1% injected divergence,
reconciled twice (first run: every finding is new; rerun: every finding is seen again).

    bench/reconcile.py --entities 1000000

The tables are built with generate_series in a scratch database on the warehouse server (dropped
afterwards unless --keep). Every injected divergence is counted, so `findings` must equal
`findings_expected`. The last line of output is one JSON object with the figures.

Measured on the 2-core development machine (shared, load average 4-5), embedded PostgreSQL 16:
    100,000 entities:   0.94 s, 1,000 findings (1,000 injected), peak RSS 47.2 MB
  1,000,000 entities:   6.91 s (compare 6.70 s, merge 0.18 s; rerun 7.00 s), 579,161 rows/s,
                        10,000 findings (10,000 injected), peak RSS 47.1 MB (47.1 MB before)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tieout import db
from tieout.config import Alerts, Entity
from tieout.db import migrate
from tieout.reconcile.run import reconcile

SYSTEMS = ("erp", "crm", "billing")
PERIOD = 500  # one entity in PERIOD gets each of the five injections below: 1% divergent

ENTITY = Entity.model_validate(
    {
        "table": "bench.canonical",
        "key": "entity_id",
        "master": "erp",
        "currency_field": "currency",
        "money_field": "amount",
        "systems": {s: {"stream": "records", "key": "id"} for s in SYSTEMS},
        "fields": {
            "name": {
                "type": "text",
                "source_of_truth": "erp",
                "names": {s: "name" for s in SYSTEMS},
                "tolerance": {"collapse_whitespace": True},
            },
            "email": {
                "type": "text",
                "source_of_truth": "crm",
                "names": {s: "email" for s in SYSTEMS},
                "tolerance": {"case_insensitive": True},
            },
            "phone": {
                "type": "text",
                "source_of_truth": "crm",
                "names": {s: "phone" for s in SYSTEMS},
                "tolerance": {"digits_only": True},
            },
            "city": {
                "type": "text",
                "source_of_truth": "erp",
                "names": {s: "city" for s in SYSTEMS},
                "tolerance": {"case_insensitive": True},
            },
            "amount": {
                "type": "money",
                "source_of_truth": "erp",
                "names": {s: "amount" for s in SYSTEMS},
            },
            "currency": {
                "type": "currency",
                "source_of_truth": "erp",
                "names": {s: "currency" for s in SYSTEMS},
                "tolerance": {"case_insensitive": True},
            },
            "updated_at": {
                "type": "timestamp",
                "source_of_truth": "erp",
                "names": {s: "updated_at" for s in SYSTEMS},
            },
        },
    }
)

BUILD = """
create schema bench;

-- the truth of every entity, with each system's id as dbt's canonical models carry them
create unlogged table bench.canonical as
select
    'E' || lpad(i::text, 8, '0') as entity_id,
    'erp-E' || lpad(i::text, 8, '0') as erp_id,
    'crm-E' || lpad(i::text, 8, '0') as crm_id,
    case when i % %(period)s <> 2 then 'billing-E' || lpad(i::text, 8, '0') end as billing_id,
    'Person ' || i as name,
    'person' || i || '@example.com' as email,
    '+49 30 ' || (1000000 + i) as phone,
    (array['Berlin', 'Paris', 'Wien', 'Zürich'])[1 + i % 4] as city,
    case when i % 4 = 3 then round((i % 99991) / 7.0 + 1) else round((i % 99991) / 7.0 + 1, 2) end
        as amount,
    (array['EUR', 'GBP', 'CHF', 'JPY'])[1 + i % 4] as currency,
    timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' as updated_at
from generate_series(1, %(n)s) as i;

-- each system's copy: benign noise (case, spaces, phone format, sub-unit amounts, milliseconds)
-- on one row in twenty, and five injected divergences on one entity in PERIOD each:
--   1 billing email changed, 2 missing in billing, 3 billing amount off by a minor unit,
--   4 crm duplicate, 5 billing record that matches no entity (extra)
create unlogged table bench.by_system as
select
    c.entity_id,
    s.system,
    s.system || '-' || c.entity_id as system_key,
    1 as duplicate_rank,
    case when i % 20 = 7 then '  ' || replace(c.name, ' ', '   ') else c.name end as name,
    case
        when s.system = 'billing' and i % %(period)s = 1 then 'changed' || i || '@example.org'
        when i % 20 = 7 then upper(c.email)
        else c.email
    end as email,
    case when i % 20 = 7 then replace(c.phone, ' ', '-') else c.phone end as phone,
    case when i % 20 = 7 then lower(c.city) else c.city end as city,
    case
        when s.system = 'billing' and i % %(period)s = 3
            then c.amount + case when c.currency = 'JPY' then 1 else 0.01 end
        when i % 20 = 7 and c.currency <> 'JPY' then c.amount + 0.004
        else c.amount
    end as amount,
    case when i % 20 = 7 then lower(c.currency) else c.currency end as currency,
    c.updated_at + case when i % 20 = 7 then interval '0.4 seconds' else interval '0' end
        as updated_at
from bench.canonical as c
cross join lateral (select substr(c.entity_id, 2)::bigint as i) as n
cross join (values ('erp'), ('crm'), ('billing')) as s (system)
where not (s.system = 'billing' and i % %(period)s = 2);

insert into bench.by_system
select entity_id, 'crm', 'crm-dup-' || entity_id, 2, name, email, phone, city, amount, currency,
    updated_at
from bench.canonical
where substr(entity_id, 2)::bigint % %(period)s = 4;

insert into bench.by_system
select null, 'billing', 'billing-extra-' || entity_id, null, name, email, phone, city, amount,
    currency, updated_at
from bench.canonical
where substr(entity_id, 2)::bigint % %(period)s = 5;

analyze bench.canonical;
analyze bench.by_system;
"""


def expected_findings(n: int) -> dict[str, int]:
    per_kind = {r: n // PERIOD + (1 if n % PERIOD >= r else 0) for r in range(1, 6)}
    return {
        "value_mismatch": per_kind[1] + per_kind[3],
        "missing_in_system": per_kind[2],
        "duplicate_key": per_kind[4],
        "extra_in_system": per_kind[5],
    }


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def scratch_database(keep: bool) -> tuple[str, str, str]:
    server = db.warehouse_url()
    name = (
        f"tieout_bench_reconcile_{uuid.uuid4().hex[:6]}" if not keep else "tieout_bench_reconcile"
    )
    parts = urlsplit(server)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return admin, name, urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args(argv)
    n = args.entities

    admin, name, url = scratch_database(args.keep)
    try:
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            build = BUILD.replace("%(n)s", str(n)).replace("%(period)s", str(PERIOD))
            conn.execute(build)  # type: ignore[arg-type]
            rows = conn.execute("select count(*) from bench.by_system").fetchone()
        by_system_rows = int(rows[0]) if rows else 0
        build_s = round(time.monotonic() - started, 2)
        print(f"built {n:,} entities, {by_system_rows:,} system rows in {build_s} s", flush=True)

        rss_before = peak_rss_mb()
        common: dict[str, Any] = {
            "url": url,
            "specs": {"bench": ENTITY},
            "relations": {"bench": ("bench.canonical", "bench.by_system")},
            "alerts": Alerts(),
            "with_balances": False,
        }
        started = time.monotonic()
        first = reconcile("bench-run-1", **common)
        seconds = round(time.monotonic() - started, 2)
        started = time.monotonic()
        second = reconcile("bench-run-2", **common)
        rerun_seconds = round(time.monotonic() - started, 2)
        with psycopg.connect(url) as conn:
            stored = conn.execute(
                "select count(*) from recon.findings where status = 'open'"
            ).fetchone()
        entity = first["entities"]["bench"]
        expected = expected_findings(n)
        figures = {
            "entities": n,
            "systems": len(SYSTEMS),
            "system_rows": by_system_rows,
            "build_s": build_s,
            "seconds": seconds,
            "compare_s": entity["compare_s"],
            "merge_s": entity["merge_s"],
            "rerun_seconds": rerun_seconds,
            "rows_per_s": round((n + by_system_rows) / seconds),
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_reconcile_mb": rss_before,
            "findings": entity["found_total"],
            "findings_by_kind": entity["found"],
            "findings_expected": sum(expected.values()),
            "findings_expected_by_kind": expected,
            "findings_stored_open": int(stored[0]) if stored else 0,
            "rerun_new": second["entities"]["bench"]["opened"],
            "rerun_resolved": second["entities"]["bench"]["resolved"],
        }
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
    print(
        f"reconciled {n:,} entities x {len(SYSTEMS)} systems in {seconds} s "
        f"(compare {figures['compare_s']} s, merge {figures['merge_s']} s; rerun {rerun_seconds} s)"
        f", {figures['findings']:,} findings ({figures['findings_expected']:,} injected), "
        f"peak RSS {figures['peak_rss_mb']} MB (before reconcile {rss_before} MB)",
        flush=True,
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result["findings"] == result["findings_expected"] else 1)
