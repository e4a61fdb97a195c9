"""Benchmark of the bound validation gate: what the fingerprints cost the validate stage
(record_validation) and reverse ETL (changes_since) for N canonical customers.

    bench/gate.py --rows 10000

A scratch database on the warehouse server is used and removed. Customers get every field
reverse ETL writes; 15% of their cities are then changed, and changes_since must find exactly
those. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tieout import db
from tieout.config import load_config
from tieout.db import migrate
from tieout.reverse_etl.gate import bound_validation, changes_since
from tieout.transform.builds import record_build
from tieout.validate.fingerprints import record_validation

SCHEMA = """
create table canonical.customers (customer_id text primary key, name text, email text,
    phone text, street text, postcode text, city text, country text, vat_number text);
insert into canonical.customers
    select 'c' || g, 'Name ' || g, 'c' || g || '@example.org', '+49 30 ' || g, 'Street ' || g,
           lpad((g % 99999)::text, 5, '0'), 'City ' || (g % 500), 'DE', 'DE' || g
    from generate_series(1, %s) as g;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()

    base = db.warehouse_url()
    name = f"tieout_bench_gate_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
            conn.execute(SCHEMA.replace("%s", str(int(args.rows))))  # type: ignore[arg-type]
        config = load_config()
        record_build("bench", "cli", None, url)
        started = time.monotonic()
        record_validation("bench-v1", url, config)
        record_s = time.monotonic() - started
        with psycopg.connect(url, autocommit=True) as conn:
            changed = conn.execute(
                "update canonical.customers set city = 'X' where random() < 0.15"
            ).rowcount
            binding = bound_validation(conn, "bench-v1")
            started = time.monotonic()
            changes = changes_since(conn, config, binding)
            compare_s = time.monotonic() - started
            stored = conn.execute("select pg_total_relation_size('ops.validated_rows')").fetchone()
        found = len(changes["customer"].keys.get("city", ()))
        figures = {
            "rows": args.rows,
            "record_validation_s": round(record_s, 3),
            "changes_since_s": round(compare_s, 3),
            "changed": changed,
            "found": found,
            "validated_rows_bytes": stored[0] if stored else None,
        }
        assert found == changed, figures
        print(json.dumps(figures))
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
