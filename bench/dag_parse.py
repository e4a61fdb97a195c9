"""How long Airflow takes to parse dags/ in a fresh process, as a dag-processor does before
every file and a task does before it runs: the DAG files and everything they import at parse
time (Cosmos rendering every dbt node from the manifest). The target is under 2 s.

    bench/dag_parse.py --runs 5

Each run is a new Python process that imports Airflow's DagBag and times only the parse. The
last line is one JSON object: {"runs", "parse_s_median", "parse_s_min", "parse_s_max", "dags",
"tasks"}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    import airflow.models.dagrun  # loaded in every dag-processor before it parses a file
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - started
    errors = {k: str(v) for k, v in bag.import_errors.items()}
    tasks = sum(len(d.tasks) for d in bag.dags.values())
    print(json.dumps({"seconds": elapsed, "errors": errors, "dags": len(bag.dags), "tasks": tasks}))
    """
)


def parse_once(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(ROOT / ".tieout" / "airflow-bench"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    }
    seconds = []
    for run in range(1, args.runs + 1):
        figures = parse_once(env)
        if figures["errors"]:
            raise SystemExit(f"dags/ does not parse: {figures['errors']}")
        seconds.append(figures["seconds"])
        dags, tasks = figures["dags"], figures["tasks"]
        print(f"run {run}: {figures['seconds']:.2f} s ({dags} DAGs, {tasks} tasks)")
    print(f"median {statistics.median(seconds):.2f} s (target under 2 s)")
    print(
        json.dumps(
            {
                "runs": args.runs,
                "parse_s_median": round(statistics.median(seconds), 3),
                "parse_s_min": round(min(seconds), 3),
                "parse_s_max": round(max(seconds), 3),
                "dags": figures["dags"],
                "tasks": figures["tasks"],
            }
        )
    )


if __name__ == "__main__":
    main()
