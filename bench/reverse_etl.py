"""Benchmark of reverse ETL against the billing sandbox limited to R requests/s: N customer
names corrected through the outbox, then the same run repeated with nothing left to change.

    bench/reverse_etl.py --rate 20 --rows 400

Run 1 sends every write (Idempotency-Key, no reads); run 2 reads each write back and marks it
verified; run 3 has nothing to do and must send zero requests. `limit_share` is run 1's
requests per second over the limit. A scratch database on the warehouse server and a sandbox
in a temporary folder are used and removed. The last line is one JSON object with the figures.

Measured on the 2-core development machine (shared with other engineers' jobs), R = 20:
    400 rows in 20.6 s: 19.4 rows/s, 97% of the limit, 0 x 429, 0 duplicates;
    verify read 400 records (400 verified, 0 writes), rerun sent 0 requests
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tieout import db
from tieout.db import migrate
from tieout.reverse_etl.run import reverse_etl
from tieout.transform.builds import record_build
from tieout.validate.fingerprints import record_validation
from tieout_sandbox import SYSTEMS, credentials, faults, generate, server, storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="billing requests/s limit")
    parser.add_argument("--rows", type=int, default=400)
    args = parser.parse_args()

    base = db.warehouse_url()
    name = f"tieout_bench_rev_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    directory = Path(tempfile.mkdtemp(prefix="tieout-bench-rev-"))
    os.environ["TIEOUT_DATABASE_URL"] = url
    try:
        scale = max(0.1, args.rows / 1000 * 1.2)
        generate.seed(directory, scale=scale, seed_value=7)
        faults.save_knobs(
            directory,
            "billing",
            faults.knobs_from_dict("billing", {"rate_limit_per_second": args.rate}),
        )
        ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
        server.up(directory, ports=ports)
        for system, uri in credentials.sandbox_connections(directory).items():
            os.environ[f"AIRFLOW_CONN_TIEOUT_{system.upper()}"] = uri
        audit_path = directory / "billing.sqlite"
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
            conn.execute("create table canonical.customers (customer_id text)")
            conn.execute(
                "insert into canonical.customers select 'c' || g from generate_series(1, %s) g",
                (args.rows * 10,),
            )
            ids = [
                row[0]
                for row in storage.open_database(audit_path).execute(
                    "select pk from customers order by seq limit ?", (args.rows,)
                )
            ]
            for n, key in enumerate(ids):
                conn.execute(
                    """insert into recon.findings (entity, system, kind, field, finding_key,
                           system_keys, canonical_value, first_seen_run_id, last_seen_run_id)
                       values ('customer', 'billing', 'value_mismatch', 'name', %s::jsonb,
                               %s::jsonb, %s, 'bench', 'bench')""",
                    (json.dumps({"customer_id": key}), json.dumps([key]), f"Bench Name {n}"),
                )
            conn.commit()
            record_build("bench", "cli", None, url)
            for run in ("bench-1", "bench-2", "bench-3"):
                conn.execute(
                    """insert into ops.validation_results (run_id, suite, expectation,
                           expectation_type, severity, entity, success)
                       values (%s, 'canonical.customers', 'rows', 't', 'critical',
                               'customer', true)""",
                    (run,),
                )
                conn.commit()
                record_validation(run, url)
        first = reverse_etl("bench-1", systems=["billing"], entities=["customer"])
        sent = first["send"]["billing.customer"]
        rows_per_s = sent["rows"] / sent["seconds"]
        requests_per_s = sent["write_requests"] / sent["seconds"]
        audit_before = len(storage.read_audit(audit_path))
        started = time.monotonic()
        second = reverse_etl("bench-2", systems=["billing"], entities=["customer"])
        verify_s = time.monotonic() - started
        third = reverse_etl("bench-3", systems=["billing"], entities=["customer"])
        audit = storage.read_audit(audit_path)
        applied: dict[str, int] = {}
        for row in audit:
            if row["applied"]:
                applied[row["path"]] = applied.get(row["path"], 0) + 1
        figures = {
            "rate_limit_rps": args.rate,
            "rows": sent["rows"],
            "seconds": sent["seconds"],
            "rows_per_s": round(rows_per_s, 2),
            "requests_per_s": round(requests_per_s, 2),
            "limit_share": round(requests_per_s / args.rate, 3),
            "http_429": sent["http_429"],
            "duplicates": sum(count - 1 for count in applied.values()),
            "applied": len(applied),
            "verified": second["verify"].get("billing.customer", {}).get("verified", 0),
            "verify_reads": second["requests"],
            "verify_s": round(verify_s, 2),
            "rerun_writes": len(audit) - audit_before,
            "rerun_requests": third["requests"],
        }
        print(
            f"{figures['rows']} rows in {sent['seconds']:.1f} s: {rows_per_s:.1f} rows/s, "
            f"{figures['limit_share']:.0%} of the {args.rate:g} requests/s limit, "
            f"{figures['http_429']} x 429, {figures['duplicates']} duplicates; "
            f"verify read {figures['verify_reads']} records, rerun sent "
            f"{figures['rerun_requests']} requests",
            file=sys.stderr,
        )
        print(json.dumps(figures))
    finally:
        server.down(directory)
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
