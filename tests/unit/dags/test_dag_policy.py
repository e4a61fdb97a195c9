"""DAG policy: every DAG imports cleanly, is documented and owned, retries, and touches no
database or network while it is parsed (how fast it parses: bench/dag_parse.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DAGS = ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))

DESCRIBE = """{
    "tags": sorted(dag.tags or []),
    "owner": dag.default_args.get("owner"),
    "retries": [t.retries for t in dag.tasks],
    "doc_md": bool(dag.doc_md),
    "tasks": len(dag.tasks),
}"""


@pytest.fixture(scope="module", params=DAG_FILES, ids=[p.name for p in DAG_FILES])
def parsed(request: pytest.FixtureRequest, parse_dags: Callable[..., dict]) -> dict:
    return parse_dags(request.param, DESCRIBE)


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


def test_probe_detects_a_network_call(tmp_path: Path, parse_dags: Callable[..., dict]) -> None:
    bad = tmp_path / "bad_dag.py"
    bad.write_text(
        "import socket\nfrom airflow.sdk import dag\n"
        "socket.create_connection(('127.0.0.1', 5432))\n"
        "@dag(dag_id='bad', tags=['x'], default_args={'owner': 'x', 'retries': 2})\n"
        "def bad():\n    pass\nbad()\n"
    )
    parsed = parse_dags(bad, DESCRIBE)
    assert parsed["errors"], "a DAG that connects at parse time must fail to import"
