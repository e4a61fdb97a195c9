"""The local clusters' airflow_local_settings: the process that forks task processes imports
what every task's DAG parse needs; the others (api-server, dag-processor) import nothing."""

from __future__ import annotations

import importlib.util
import sys

from tieout.dev import cluster


def load_settings():
    spec = importlib.util.spec_from_file_location(
        "airflow_local_settings", cluster.PRELOAD_DIR / "airflow_local_settings.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_processes_that_run_tasks_preload() -> None:
    settings = load_settings()
    assert settings.preload(["airflow", "api-server"]) == []
    assert settings.preload(["airflow", "dag-processor"]) == []
    assert settings.preload(["airflow"]) == []
    loaded = settings.preload(["airflow", "scheduler"])
    assert loaded == list(settings.PRELOAD)
    assert {"cosmos.converter", "tieout.transform.cosmos"} <= set(sys.modules)


def test_the_cluster_puts_the_settings_on_pythonpath(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path))
    # a configured warehouse, so building the environment starts no embedded server
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/tieout")
    env = cluster.environment(tmp_path, 8322, "postgresql://x@127.0.0.1/airflow", "LocalExecutor")
    assert env["PYTHONPATH"].split(":")[0] == str(cluster.PRELOAD_DIR)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] not in ("8793", "8794")
    assert "AIRFLOW__CELERY__BROKER_URL" not in env
