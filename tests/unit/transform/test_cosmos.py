"""The Airflow side: cosmos renders every dbt node as a task from the manifest, with no dbt call,
database or network at DAG-parse time (how fast: bench/dag_parse.py), grouped by the project's
folders with each model's tests beside it; without a manifest the DAG still parses and shows one
task that says what to run."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from unittest import mock

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


def test_the_grid_groups_dbt_by_layer_with_each_models_tests_beside_it(
    manifest: Path, tmp_path: Path, parse_dags: Callable[..., dict]
) -> None:
    parsed = probe(tmp_path, parse_dags)
    assert parsed["errors"] == {}
    assert parsed["refused"] == []
    tasks = set(parsed["dags"]["transform_probe"]["tasks"])
    layers = {t.split(".")[2] for t in tasks if t.startswith("transform.models.")}
    assert layers == {"staging", "intermediate", "canonical", "finance"}
    nodes = json.loads(manifest.read_text())["nodes"]
    tested = {
        parent
        for node in nodes.values()
        if node["resource_type"] == "test"
        for parent in node["depends_on"]["nodes"]
    }
    models = [n for n in nodes.values() if n["resource_type"] == "model"]
    assert len(models) > 20
    for model in models:
        folders = Path(model["original_file_path"]).parts[:-1]  # models/staging/erp
        group = ".".join(["transform", *folders, model["name"]])
        assert f"{group}.run" in tasks, (group, sorted(tasks)[:20])
        if model["unique_id"] in tested:
            assert f"{group}.test" in tasks, group
    for seed in (n for n in nodes.values() if n["resource_type"] == "seed"):
        assert f"transform.seeds.{seed['name']}.seed" in tasks
    # no test floats in a group of its own: each is reported with the models it checks
    assert not [t for t in tasks if t.endswith("_test")]
    # one dbt build for the whole project, its progress reported by the tasks above
    assert "transform.dbt_producer_watcher" in tasks


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
    assert configs["render_config"].test_behavior.value == "after_each"
    assert configs["render_config"].group_nodes_by_folder is True
    assert configs["execution_config"].execution_mode.value == "watcher"
    # the one build is a dbt process of its own, read through its JSON log lines; a model task
    # that runs dbt itself (cleared, retried) runs it in-process
    assert configs["execution_config"].setup_operator_args["invocation_mode"].value == "subprocess"
    assert configs["execution_config"].invocation_mode.value == "dbt_runner"
    assert Path(configs["profile_config"].profiles_yml_filepath).name == "profiles.yml"
    assert cosmos.operator_args()["pre_execute"] is cosmos.prepare_dbt_environment


def test_local_execution_mode_is_a_choice_and_a_typo_is_refused(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tieout.transform import cosmos

    monkeypatch.setenv("TIEOUT_DBT_EXECUTION_MODE", "local")
    assert cosmos.cosmos_configs()["execution_config"].execution_mode.value == "local"
    monkeypatch.setenv("TIEOUT_DBT_EXECUTION_MODE", "watch")
    with pytest.raises(ValueError, match="TIEOUT_DBT_EXECUTION_MODE='watch'"):
        cosmos.execution_mode()


def test_model_tasks_poll_for_their_model_and_retry_promptly(
    manifest: Path, tmp_path: Path, parse_dags: Callable[..., dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Watcher mode: a model's task polls for its model instead of deferring (deferring lost
    tasks to Airflow's defer/trigger race); a dbt node's retry comes 5 s after, not 30 s+."""
    describe = """{
        name: {k: str(getattr(dag.task_dict[name], k, None))
               for k in ("deferrable", "poke_interval", "mode", "timeout", "retry_delay")}
        for name in ("transform.models.canonical.orders.run",
                     "transform.models.canonical.orders.test",
                     "transform.seeds.currencies.seed")
    }"""
    dag_file = tmp_path / "transform_probe.py"
    dag_file.write_text(DAG_FILE.format(patch=""))
    parsed = parse_dags(dag_file, describe)
    assert parsed["errors"] == {}
    producer = parse_dags(
        dag_file, 'str(dag.task_dict["transform.dbt_producer_watcher"].invocation_mode.value)'
    )
    assert producer["dags"]["transform_probe"] == "subprocess"
    for name, task in parsed["dags"]["transform_probe"].items():
        assert task == {
            "deferrable": "False",
            "poke_interval": "1.0",
            "mode": "poke",
            "timeout": "7200.0",
            "retry_delay": "0:00:05",
        }, name
    monkeypatch.setenv("TIEOUT_DBT_EXECUTION_MODE", "local")
    from tieout.transform import cosmos

    assert "deferrable" not in cosmos.operator_args()
    assert cosmos.operator_args()["retry_delay"].total_seconds() == 5


def test_the_task_sets_dbts_console_to_info_whatever_the_environment_says(
    manifest: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The watcher learns each model's status from the lines dbt prints: DBT_QUIET=true (the
    demo sets it for its own console) would leave every model task polling."""
    from tieout.transform import cosmos

    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/tieout")
    monkeypatch.setenv("DBT_QUIET", "true")
    monkeypatch.setenv("DBT_LOG_LEVEL", "none")
    with mock.patch.dict(os.environ):  # the hook writes os.environ: put it back after
        cosmos.prepare_dbt_environment()
        assert os.environ["DBT_QUIET"] == "false"
        assert os.environ["DBT_LOG_LEVEL"] == "info"
        assert os.environ["TIEOUT_DBT_PORT"] == "1"
