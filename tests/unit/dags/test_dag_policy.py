"""DAG policy: every DAG imports cleanly, is documented and owned, retries, and touches no
database or network while it is parsed (how fast it parses: bench/dag_parse.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DAGS = ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))

PROBE = textwrap.dedent(
    """
    import json, socket, sys, time
    calls = []
    def refuse(*args, **kwargs):
        calls.append(repr(args[1:2]))
        raise OSError("network or database access at DAG parse time")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    import psycopg, psycopg2
    psycopg.connect = refuse
    psycopg2.connect = refuse
    from airflow.dag_processing.dagbag import DagBag
    import airflow.models.dagrun  # loaded in every dag-processor before it parses a file
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - started
    dags = {
        dag_id: {
            "tags": sorted(dag.tags or []),
            "owner": dag.default_args.get("owner"),
            "retries": [t.retries for t in dag.tasks],
            "doc_md": bool(dag.doc_md),
            "tasks": len(dag.tasks),
        }
        for dag_id, dag in bag.dags.items()
    }
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": dags, "seconds": elapsed, "refused": calls}))
    """
)


def parse(dag_file: Path) -> dict:
    import json

    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(ROOT / ".tieout" / "airflow-policy"),
    }
    env.pop("TIEOUT_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=DAG_FILES, ids=[p.name for p in DAG_FILES])
def parsed(request: pytest.FixtureRequest) -> dict:
    return parse(request.param)


def test_there_are_dags() -> None:
    assert DAG_FILES, "no DAG files found"


def test_imports_without_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["dags"], "the file defines no DAG"


def test_no_database_or_network_at_parse_time(parsed: dict) -> None:
    assert parsed["refused"] == []


def test_tags_owner_docs_retries(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert dag["owner"] and dag["owner"] != "airflow", f"{dag_id} has no owner"
        assert dag["doc_md"], f"{dag_id} has no doc_md"
        assert min(dag["retries"]) >= 2, f"{dag_id} has a task with fewer than 2 retries"


def test_probe_detects_a_network_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad_dag.py"
    bad.write_text(
        "import socket\nfrom airflow.sdk import dag\n"
        "socket.create_connection(('127.0.0.1', 5432))\n"
        "@dag(dag_id='bad', tags=['x'], default_args={'owner': 'x', 'retries': 2})\n"
        "def bad():\n    pass\nbad()\n"
    )
    parsed = parse(bad)
    assert parsed["errors"], "a DAG that connects at parse time must fail to import"


_ = socket  # the probe patches socket in the child process
