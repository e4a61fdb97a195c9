"""The Airflow side: cosmos renders every dbt node as a task from the manifest, with no dbt call,
database or network at DAG-parse time (how fast: bench/dag_parse.py); without a manifest the
DAG still parses and shows one task that says what to run."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tieout.transform import parse_manifest

DAG_FILE = textwrap.dedent(
    '''
    """Probe DAG for the transform task group."""
    from datetime import datetime
    from airflow.sdk import DAG
    from tieout.transform import cosmos
    {patch}
    with DAG("transform_probe", start_date=datetime(2026, 1, 1), schedule=None,
             default_args={{"owner": "tieout", "retries": 2}}, tags=["probe"]) as dag:
        cosmos.transform_task_group()
    '''
)

DESCRIBE = """{
    "tasks": sorted(dag.task_dict),
    "docs": {t.task_id: t.doc_md for t in dag.tasks},
}"""


def probe(tmp_path: Path, parse_dags: Callable[..., dict], patch: str = "") -> dict:
    dag_file = tmp_path / "transform_probe.py"
    dag_file.write_text(DAG_FILE.format(patch=patch))
    return parse_dags(dag_file, DESCRIBE)


@pytest.fixture(scope="module")
def manifest() -> Path:
    return parse_manifest()


def test_every_model_is_a_task_with_its_tests(
    manifest: Path, tmp_path: Path, parse_dags: Callable[..., dict]
) -> None:
    parsed = probe(tmp_path, parse_dags)
    assert parsed["errors"] == {}
    assert parsed["refused"] == []
    tasks = parsed["dags"]["transform_probe"]["tasks"]
    for model in ("customers", "int_customers_crosswalk", "stg_crm__contacts", "receivables_aging"):
        assert any(t.startswith(f"transform.{model}") for t in tasks), (model, tasks[:20])
    # single-model tests run inside each model's `dbt build`; only tests spanning two models
    # (relationships, row counts) may be detached into their own task
    detached = [t for t in tasks if t.endswith("_test")]
    assert all(("relationships" in t or "row_count" in t) for t in detached), detached


def test_missing_manifest_still_parses_with_a_clear_task(
    tmp_path: Path, parse_dags: Callable[..., dict]
) -> None:
    patch = f"cosmos.manifest_path = lambda: __import__('pathlib').Path({str(tmp_path)!r})"
    parsed = probe(tmp_path, parse_dags, patch)
    assert parsed["errors"] == {}
    dag = parsed["dags"]["transform_probe"]
    assert dag["tasks"] == ["transform.dbt_manifest_missing"]
    assert "tieout transform --parse-only" in dag["docs"]["transform.dbt_manifest_missing"]


def test_configs_use_the_manifest_and_the_env_profile(manifest: Path) -> None:
    from tieout.transform import cosmos

    configs = cosmos.cosmos_configs()
    assert configs["render_config"].load_method.value == "dbt_manifest"
    assert configs["render_config"].test_behavior.value == "build"
    assert Path(configs["profile_config"].profiles_yml_filepath).name == "profiles.yml"
    assert cosmos.operator_args()["pre_execute"] is cosmos.prepare_dbt_environment
