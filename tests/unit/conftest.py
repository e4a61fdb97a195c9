"""What the unit tests share (`api` and `fake`, the small REST API, are in tests/conftest.py).

- `probe`: Python code run in a new process set up as the dag-processor's, refusing every
  network and database connection, its last line of output read as JSON.
- `parse_dags`: parsing a DAG file as Airflow's dag-processor does, in a fresh process that
  refuses every network and database connection, so a test reads what the DAGs define without
  starting Airflow (how long parsing takes is bench/dag_parse.py's business).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Every probe starts with this: a connection attempt fails and is listed in `calls`.
REFUSE_CONNECTIONS = textwrap.dedent(
    """
    import socket
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
    """
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    import airflow.models.dagrun  # loaded in every dag-processor before it parses a file
    bag = DagBag(dag_folder=sys.argv[1])
    def describe(dag):
        return {describe}
    print(json.dumps({{
        "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
        "refused": calls,
        "dags": {{dag_id: describe(dag) for dag_id, dag in bag.dags.items()}},
    }}))
    """
)


def run_probe(code: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run Python `code` in a new process as Airflow's dag-processor would (no example DAGs, the
    tests' Airflow home, no parsing context), after REFUSE_CONNECTIONS (the code reads the
    refused attempts from `calls`), and return the JSON of its last line of output."""
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(ROOT / ".tieout" / "airflow-policy"),
    }
    for name in (
        "TIEOUT_DATABASE_URL",
        "_AIRFLOW_PARSING_CONTEXT_DAG_ID",
        "_AIRFLOW_PARSING_CONTEXT_TASK_ID",
    ):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", REFUSE_CONNECTIONS + code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def parse_dag_file(dag_file: Path, describe: str) -> dict[str, Any]:
    """Parse `dag_file` in a new process. `describe` is a Python expression over `dag` whose
    (JSON) value is returned per DAG id, under "dags", beside the import "errors" and the
    connections "refused"."""
    return run_probe(PROBE.format(describe=describe), str(dag_file))


@pytest.fixture(scope="session")
def probe() -> Callable[..., dict[str, Any]]:
    """`probe(code, *args, stdin=...)`: see run_probe."""
    return run_probe


@pytest.fixture(scope="session")
def parse_dags() -> Callable[[Path, str], dict[str, Any]]:
    """`parse_dags(dag_file, describe)`: see parse_dag_file."""
    return parse_dag_file
