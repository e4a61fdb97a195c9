"""How long Airflow takes to parse dags/ in a fresh process, as a dag-processor does before
every file and a task does before it runs: the DAG files and everything they import at parse
time (Cosmos rendering every dbt node from the manifest). The target is under 2 s.

    bench/dag_parse.py --runs 5
    bench/dag_parse.py --runs 7 --as-task transform.models.canonical.customers.run

Each run is a new Python process that imports Airflow's DagBag and times only the parse.
`--as-task TASK_ID` parses as a task of tieout_nightly does before it runs: in a process that
first imported what the local clusters' scheduler preloads (tieout.dev.cluster.PRELOAD_DIR;
its task processes are forked from it), with Airflow's parsing context naming the task, so the
DAG renders only what that task needs (tieout.transform.cosmos). The last line is one JSON
object: {"runs", "task", "parse_s_median", "parse_s_min", "parse_s_max", "cpu_s_median",
"dags", "tasks"}.
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
    if len(sys.argv) > 2:
        sys.argv[1:] = ["scheduler", sys.argv[1]]  # what the preload looks for
        import airflow_local_settings  # the scheduler's preload: not timed
        sys.argv[1:] = sys.argv[2:]
    from airflow.dag_processing.dagbag import DagBag
    import airflow.models.dagrun  # loaded in every dag-processor before it parses a file
    started, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    errors = {k: str(v) for k, v in bag.import_errors.items()}
    tasks = sum(len(d.tasks) for d in bag.dags.values())
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "errors": errors, "dags": len(bag.dags),
                      "tasks": tasks}))
    """
)


def parse_once(env: dict[str, str], task: str | None = None) -> dict:
    target = ROOT / "dags" / "tieout_nightly.py" if task else ROOT / "dags"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(target), *(["preload"] if task else [])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--as-task", metavar="TASK_ID", help="parse as this task of tieout_nightly does"
    )
    args = parser.parse_args()
    from tieout.dev.cluster import PRELOAD_DIR

    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(ROOT / ".tieout" / "airflow-bench"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    }
    if args.as_task:
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(PRELOAD_DIR), env.get("PYTHONPATH", "")]),
                "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "tieout_nightly",
                "_AIRFLOW_PARSING_CONTEXT_TASK_ID": args.as_task,
            }
        )
    seconds, cpu = [], []
    for run in range(1, args.runs + 1):
        figures = parse_once(env, args.as_task)
        if figures["errors"]:
            raise SystemExit(f"dags/ does not parse: {figures['errors']}")
        seconds.append(figures["seconds"])
        cpu.append(figures["cpu"])
        dags, tasks = figures["dags"], figures["tasks"]
        print(
            f"run {run}: {figures['seconds']:.3f} s, CPU {figures['cpu']:.3f} s "
            f"({dags} DAGs, {tasks} tasks)"
        )
    print(f"median {statistics.median(seconds):.3f} s (target under 2 s)")
    print(
        json.dumps(
            {
                "runs": args.runs,
                "task": args.as_task,
                "parse_s_median": round(statistics.median(seconds), 3),
                "parse_s_min": round(min(seconds), 3),
                "parse_s_max": round(max(seconds), 3),
                "cpu_s_median": round(statistics.median(cpu), 3),
                "dags": figures["dags"],
                "tasks": figures["tasks"],
            }
        )
    )


if __name__ == "__main__":
    main()
