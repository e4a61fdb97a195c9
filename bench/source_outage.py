"""How long a stream of a source that answers 500 to everything takes to fail, per try of its
task, with the shipped source YAML (include/config/sources): the CRM (OAuth: its token endpoint
answers 500), the ERP and the shop. Needs a PostgreSQL (TIEOUT_BENCH_SERVER_URL, default the
local test server) and free ports from TIEOUT_SANDBOX_BASE_PORT (default 9130).

    .venv/bin/python bench/source_outage.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tieout_sandbox import credentials, generate, server

SERVER = os.environ.get("TIEOUT_BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/test")
STREAMS = (("crm", "contacts"), ("erp", "customers"), ("shop", "customers"))


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="tieout-outage-"))
    generate.seed(directory, scale=0.1, seed_value=7)
    base = int(os.environ.get("TIEOUT_SANDBOX_BASE_PORT", "9130"))
    ports = {"crm": base, "erp": base + 1, "billing": base + 2, "shop": base + 3}
    server.up(directory, ports=ports)
    from tieout.http import connections

    for system, uri in credentials.sandbox_connections(directory).items():
        os.environ[connections.env_name(f"tieout_{system}")] = uri
    name = "tieout_outage_bench_" + uuid.uuid4().hex[:6]
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    os.environ["TIEOUT_DATABASE_URL"] = SERVER.rsplit("/", 1)[0] + "/" + name
    try:
        from tieout import orchestration
        from tieout.db import migrate

        migrate.migrate()
        for system, stream in STREAMS:
            server.set_faults(system, directory, outage_status=500)
            started = time.monotonic()
            error = None
            try:
                orchestration.extract_stream(system, stream, f"outage-bench-{system}")
            except Exception as exc:  # noqa: BLE001 - the failure is what is measured
                error = str(exc)
            seconds = round(time.monotonic() - started, 2)
            server.set_faults(system, directory, outage_status=0)
            print(json.dumps({"stream": f"{system}.{stream}", "fail_s": seconds, "error": error}))
    finally:
        server.down(directory)
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


if __name__ == "__main__":
    main()
