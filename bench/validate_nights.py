"""Benchmark of validate and reconcile on two nights through the CLI: a sandbox company at
`--scale`, night 1 (extract, transform, validate, reconcile), `sandbox mutate --days 1`, night 2.

    bench/validate_nights.py --scale 10

Each stage runs as its `tieout` command (`tieout validate --json`, `tieout reconcile`), so the
seconds include process start and imports, as a user running the CLI pays them. Runs in a fresh
database on $TIEOUT_TEST_DATABASE_URL (else the embedded PostgreSQL). The open findings after
each night are checked against the sandbox's ground truth (`findings_match_truth`, night 1; on
night 2 reverse ETL has not run, so the truth still applies). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import SEED, free_base_port, fresh_database  # noqa: E402


def tieout(*args: str, env: dict[str, str], timeout: float | None = None) -> tuple[float, str]:
    """Run one `tieout` command; returns its wall seconds and its stdout."""
    command = [str(Path(sys.executable).parent / "tieout"), *args]
    started = time.monotonic()
    done = subprocess.run(
        command,
        check=False,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    took = round(time.monotonic() - started, 2)
    if done.returncode not in (0, 1) or (done.returncode == 1 and args[0] != "validate"):
        sys.stderr.write(done.stdout)
        raise SystemExit(f"tieout {' '.join(args)} failed with {done.returncode}")
    return took, done.stdout


TRANSFORM_TIMEOUT_S = 300.0


def cancel_transform(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """select pg_terminate_backend(pid) from pg_stat_activity
               where datname = current_database() and usename = 'tieout_transformer'"""
        )


def night(number: int, env: dict[str, str], full: bool) -> dict[str, Any]:
    run_id = f"bench_night_{number}"
    figures: dict[str, Any] = {}
    figures["extract_s"], _ = tieout("extract", "--quiet", "--run-id", run_id, env=env)
    try:
        figures["transform_s"], _ = tieout(
            "transform", "--run-id", run_id, env=env, timeout=TRANSFORM_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        # this benchmark measures validate and reconcile; a transform that stalls is rebuilt
        # from raw (same canonical rows) and said so in the figures
        cancel_transform(env["TIEOUT_DATABASE_URL"])
        figures["transform_stalled_after_s"] = TRANSFORM_TIMEOUT_S
        figures["transform_s"], _ = tieout(
            "transform", "--full-refresh", "--run-id", run_id, env=env
        )
    args = ["validate", "--json", "--run-id", run_id, *(["--full"] if full else [])]
    figures["validate_s"], out = tieout(*args, env=env)
    result = json.loads(out.strip().splitlines()[-1])
    figures["validation"] = {
        k: result.get(k)
        for k in ("mode", "suites", "expectations", "failed_critical", "failed_warning", "blocked")
    }
    figures["reconcile_s"], _ = tieout("reconcile", "--run-id", run_id, env=env)
    return figures


Identity = tuple[str, str, str, str, str]  # kind, entity, system, field, record


def truth(path: Path) -> set[Identity]:
    """The generator's divergences, as tests/e2e/test_reconcile_ground_truth.py reads them."""
    found = set()
    for item in json.loads(path.read_text())["divergences"]:
        keys = item["keys"]
        record = keys["canonical"] if item["kind"] != "extra_in_system" else keys[item["system"]]
        found.add((item["kind"], item["entity"], item["system"], item["field"] or "", str(record)))
    return found


def open_findings(url: str) -> set[Identity]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select kind, entity, system, field, coalesce(entity_ref, system_keys ->> 0, '')
               from recon.findings where status = 'open'"""
        ).fetchall()
    return {tuple(str(v) for v in row) for row in rows}  # type: ignore[misc]


def stage_figures(url: str, run_id: str) -> dict[str, Any]:
    """Where validate's and reconcile's time went, from their ops.stage_runs figures."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select stage, figures from ops.stage_runs where run_id = %s", (run_id,)
        ).fetchall()
    out: dict[str, Any] = {}
    for stage, figures in rows:
        if stage == "reconcile":
            out["reconcile"] = {
                name: {k: e.get(k) for k in ("compare_s", "merge_s", "seen", "opened", "resolved")}
                for name, e in (figures.get("entities") or {}).items()
            }
            out["reconcile"]["duration_s"] = figures.get("duration_s")
        if stage == "validate":
            out["validate"] = {
                name: {k: v for k, v in scope.items() if k != "reason"}
                for name, scope in (figures.get("scopes") or {}).items()
            }
            out["validate"]["duration_s"] = figures.get("duration_s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--full-both", action="store_true", help="`validate --full` both nights.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the database (its URL is printed) for a look."
    )
    args = parser.parse_args()
    from tieout_sandbox.credentials import sandbox_connections

    admin, url = fresh_database()
    out: dict[str, Any] = {"scale": args.scale, "nights": []}
    with tempfile.TemporaryDirectory(prefix="tieout-bench-nights-") as scratch:
        tmp = tempfile.mkdtemp(prefix="tieout-bench-nights-") if args.keep else scratch
        folder = Path(tmp) / "sandbox"
        base = {"TIEOUT_SANDBOX_DIR": str(folder)}
        port = os.environ.get("TIEOUT_SANDBOX_BASE_PORT") or str(free_base_port())
        try:
            tieout("sandbox", "seed", "--scale", str(args.scale), "--seed", str(SEED),
                   "--data-dir", str(folder), env=base)  # fmt: skip
            tieout("sandbox", "up", "--data-dir", str(folder), "--base-port", port, env=base)
            env = {
                **base,
                "TIEOUT_DATABASE_URL": url,
                "TIEOUT_STATE_DIR": str(Path(tmp) / "state"),
                **{
                    f"AIRFLOW_CONN_TIEOUT_{k.upper()}": v
                    for k, v in sandbox_connections(folder).items()
                },
            }
            for number in (1, 2):
                if number == 2:
                    tieout("sandbox", "mutate", "--days", "1", "--data-dir", str(folder), env=base)
                figures = night(number, env, full=args.full_both)
                _, path = tieout("sandbox", "truth", "--data-dir", str(folder), env=base)
                found, want = open_findings(url), truth(Path(path.strip()))
                figures["open_findings"] = len(found)
                figures["stages"] = stage_figures(url, f"bench_night_{number}")
                figures["findings_match_truth"] = found == want
                out["nights"].append(figures)
                print(json.dumps(figures, default=str), file=sys.stderr)
        finally:
            if args.keep:
                print(f"kept database {url}", file=sys.stderr)
                admin = None
            subprocess.run(
                [str(Path(sys.executable).parent / "tieout"), "sandbox", "down",
                 "--data-dir", str(folder)],
                check=False, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if admin:
                with psycopg.connect(admin, autocommit=True) as conn:
                    name = url.rsplit("/", 1)[1]
                    conn.execute(f'drop database if exists "{name}" with (force)')
    first, second = out["nights"]
    out["validate_ratio"] = round(second["validate_s"] / first["validate_s"], 3)
    out["reconcile_ratio"] = round(second["reconcile_s"] / first["reconcile_s"], 3)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
