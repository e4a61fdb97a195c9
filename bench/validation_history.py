"""How the validate stage's summary task grows with the nights behind it.

    bench/validation_history.py --state-dir DIR [--nights 60]

DIR is a state folder that `bench/nightly.py --state-dir DIR` kept (its embedded PostgreSQL
stopped). The bench copies it and replays `--nights` more nights on the copy: each night it
copies the newest validation's GX results (under a new run name and time) and its rows of
ops.validation_results, as the DAG's `validate.<entity>` tasks write them, then runs
`tieout.validate.run.finish`, the `validate.summary` task (fingerprints of every written row
and their pruning, GX results kept, Data Docs), and times it. Prints the seconds and what the
GX results and Data Docs hold on disk at nights 1, 5, 10, 20, 30, 45, 60, 90 and the last (with
the median of the last five nights' seconds); the last line is one JSON object.

To measure another commit's summary task, run this file with that commit's `include/` first on
PYTHONPATH (a git worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPORT_AT = {1, 5, 10, 20, 30, 45, 60, 90}


def disk(path: Path) -> tuple[int, int]:
    """(bytes, files) under a folder."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def newest_validation(conn: Any) -> str:
    row = conn.execute(
        "select run_id from ops.validations order by validated_at desc limit 1"
    ).fetchone()
    if row is None:
        raise SystemExit("the state holds no validation: run bench/nightly.py --state-dir first")
    return str(row[0])


def copy_results(
    results: Path, target_dir: Path, source: str, run: str, when: datetime | None
) -> int:
    """The GX results of run `source` under `results`, into `target_dir` as run `run` at
    `when` (None: at their own time); files written."""
    written = 0
    for path in sorted(results.rglob("*.json")):
        parts = list(path.relative_to(results).parts)
        if source not in parts:
            continue
        at = parts.index(source)
        parts[at] = run
        if when is not None:
            parts[at + 1] = when.strftime("%Y%m%dT%H%M%S.%fZ")
        target = target_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written += 1
    if not written:
        raise SystemExit(f"no GX result of {source} under {results}")
    return written


def copy_verdicts(conn: Any, source: str, run: str) -> None:
    columns = [
        str(row[0])
        for row in conn.execute(
            """select column_name from information_schema.columns
               where table_schema = 'ops' and table_name = 'validation_results'
                 and column_name not in ('run_id', 'validated_at')
                 and is_generated = 'NEVER' and is_identity = 'NO'
               order by ordinal_position"""
        )
    ]
    listed = ", ".join(columns)
    conn.execute(
        f"insert into ops.validation_results (run_id, {listed}) "  # noqa: S608 - catalog names
        f"select %s, {listed} from ops.validation_results where run_id = %s",
        (run, source),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--nights", type=int, default=60)
    args = parser.parse_args()
    kept_state = args.state_dir.resolve()
    if not (kept_state / "pg").is_dir():
        raise SystemExit(f"{kept_state} holds no embedded PostgreSQL: not a kept bench state")

    work = Path(tempfile.mkdtemp(prefix="tieout-history-"))
    state = work / "state"
    started = time.monotonic()
    state.mkdir()
    for part in kept_state.iterdir():
        if part.name != "sandbox":  # the sandbox's systems: not needed here
            # `cp -a` keeps the owner: the embedded server runs as a user of its own
            subprocess.run(["cp", "-a", str(part), str(state)], check=True)
    (state / "pg" / "data" / "postmaster.pid").unlink(missing_ok=True)
    print(f"copied {kept_state} in {time.monotonic() - started:.0f} s", flush=True)
    os.environ["TIEOUT_STATE_DIR"] = str(state)
    os.environ.pop("TIEOUT_DATABASE_URL", None)

    from tieout import db
    from tieout.db import embedded
    from tieout.validate.context import data_docs_dir, results_dir
    from tieout.validate.run import finish

    embedded.start()
    rows: list[dict[str, Any]] = []
    took: list[float] = []
    try:
        with db.connect(db.warehouse_url(), autocommit=True) as conn:
            source = newest_validation(conn)
        # the newest validation's results, set aside: its own fall out of the kept window
        originals = work / "results"
        copy_results(results_dir(), originals, source, source, None)
        first = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)
        for night in range(1, args.nights + 1):
            when = first + timedelta(days=night)
            run = f"scheduled__{when.isoformat()}"
            copy_results(originals, results_dir(), source, run, when)
            with db.connect(db.warehouse_url(), autocommit=True) as conn:
                copy_verdicts(conn, source, run)
            began = time.monotonic()
            figures = finish(run)
            took.append(time.monotonic() - began)
            if night in REPORT_AT or night == args.nights:
                results_bytes, results_files = disk(results_dir())
                docs_bytes, docs_files = disk(data_docs_dir())
                with db.connect(db.warehouse_url()) as conn:
                    fingerprints = conn.execute(
                        "select count(*) from ops.validated_rows"
                    ).fetchone()
                row = {
                    "night": night,
                    "finish_s": round(took[-1], 2),
                    # one night's figure moves by a second on a shared machine
                    "finish_s_median5": round(statistics.median(took[-5:]), 2),
                    "gx_results_mb": round(results_bytes / 1e6, 1),
                    "gx_results_files": results_files,
                    "data_docs_mb": round(docs_bytes / 1e6, 1),
                    "data_docs_pages": len(list(data_docs_dir().rglob("*.html"))),
                    "index_kb": round((data_docs_dir() / "index.html").stat().st_size / 1e3),
                    "validated_rows": int(fingerprints[0]) if fingerprints else 0,
                    "expectations": figures.get("expectations"),
                }
                rows.append(row)
                print(
                    f"night {night:3d}: finish {row['finish_s']:6.2f} s (median of the last "
                    f"five {row['finish_s_median5']:.2f} s), GX results "
                    f"{row['gx_results_mb']} MB in {results_files} files, Data Docs "
                    f"{row['data_docs_mb']} MB in {row['data_docs_pages']} pages "
                    f"(index {row['index_kb']} kB), {row['validated_rows']:,} fingerprints",
                    flush=True,
                )
    finally:
        embedded.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"nights": args.nights, "source": source, "rows": rows}))


if __name__ == "__main__":
    main()
