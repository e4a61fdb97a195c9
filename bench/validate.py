"""Benchmark of the validate stage: every GX suite against a sandbox company built by the real
chain (sandbox seed -> tieout extract -> dbt build), in a fresh warehouse database.

    bench/validate.py --scale 1
    bench/validate.py --url postgresql://...   # an already built warehouse; nothing is prepared

`seconds` is the validate stage end to end as the DAG runs it (GX import included, Data Docs
built); `validate_s` excludes the GX import. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

SEED = 7


def tieout(*args: str, env: dict[str, str] | None = None) -> None:
    command = [str(Path(sys.executable).parent / "tieout"), *args]
    subprocess.run(command, check=True, env={**os.environ, **(env or {})}, stdout=sys.stderr)


def free_base_port() -> int:
    """A port p with p..p+3 free, for the four sandbox services."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 3 < 65535 and all(_free(base + n) for n in range(4)):
            return base
    raise RuntimeError("no four consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def fresh_database() -> tuple[str, str]:
    from tieout.db import embedded, migrate

    admin = os.environ.get("TIEOUT_TEST_DATABASE_URL")
    if admin is None:
        server, _ = embedded.start()
        admin = server.url("postgres")
    name = f"tieout_bench_validate_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url) as conn:
        migrate.migrate(conn)
    return admin, url


def prepare(scale: float, url: str, folder: Path) -> dict[str, float]:
    """Seed, serve, extract and build; returns the seconds each step took."""
    from tieout.transform import build
    from tieout_sandbox.credentials import sandbox_connections

    took: dict[str, float] = {}
    started = time.monotonic()
    tieout("sandbox", "seed", "--scale", str(scale), "--seed", str(SEED), "--data-dir", str(folder))
    tieout("sandbox", "up", "--data-dir", str(folder), "--base-port", str(free_base_port()))
    took["sandbox_s"] = round(time.monotonic() - started, 1)
    env = {"TIEOUT_DATABASE_URL": url, "TIEOUT_SANDBOX_DIR": str(folder)}
    env.update(
        {f"AIRFLOW_CONN_TIEOUT_{k.upper()}": v for k, v in sandbox_connections(folder).items()}
    )
    started = time.monotonic()
    tieout("extract", "--quiet", "--run-id", "bench_validate", env=env)
    took["extract_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    build(run_id="bench_validate", full_refresh=True, url=url)
    took["dbt_s"] = round(time.monotonic() - started, 1)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--url", default=None, help="Validate this warehouse as it is.")
    parser.add_argument("--keep", action="store_true", help="Keep the database and sandbox.")
    args = parser.parse_args()

    admin = None
    figures: dict[str, Any] = {"scale": args.scale}
    with tempfile.TemporaryDirectory(prefix="tieout-bench-validate-") as tmp:
        folder = Path(tmp) / "sandbox"
        if args.url:
            url = args.url
            figures["scale"] = None
        else:
            admin, url = fresh_database()
        try:
            if not args.url:
                figures["prepare"] = prepare(args.scale, url, folder)
            os.environ["TIEOUT_STATE_DIR"] = str(Path(tmp) / "state")
            started = time.monotonic()
            from tieout.validate.context import quiet_gx

            quiet_gx()
            import great_expectations  # noqa: F401 - timed: the DAG task pays it too

            figures["gx_import_s"] = round(time.monotonic() - started, 2)
            from tieout.validate import validate

            result = validate("bench_validate", url=url)
            figures["seconds"] = round(time.monotonic() - started, 2)
            figures.update(
                {
                    "validate_s": result["validate_s"],
                    "suites": result["suites"],
                    "expectations": result["expectations"],
                    "failed_critical": result["failed_critical"],
                    "failed_warning": result["failed_warning"],
                    "blocked": result["blocked"],
                    "warnings": result["warnings"],
                }
            )
            with psycopg.connect(url) as conn:
                figures["canonical_rows"] = {
                    table: conn.execute(f"select count(*) from canonical.{table}").fetchone()[0]  # type: ignore[index]
                    for table in ("customers", "orders", "order_lines", "invoices", "payments")
                }
        finally:
            if not args.url and not args.keep:
                subprocess.run(
                    [str(Path(sys.executable).parent / "tieout"), "sandbox", "down",
                     "--data-dir", str(folder)],
                    check=False, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                if admin:
                    with psycopg.connect(admin, autocommit=True) as conn:
                        name = url.rsplit("/", 1)[1]
                        conn.execute(f'drop database if exists "{name}" with (force)')
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
