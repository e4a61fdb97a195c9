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


def test_a_worker_slot_is_free_a_second_after_its_task(tmp_path, monkeypatch) -> None:
    """Airflow's default min_heartbeat_interval (5 s) is how long a task's supervisor may wait
    to see its process exit; the local clusters and the compose file set 1 s. A value the user
    set is kept."""
    import yaml

    from tieout.paths import project_root

    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/tieout")
    monkeypatch.delenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", raising=False)
    env = cluster.environment(tmp_path, 8322, "postgresql://x@127.0.0.1/airflow", "LocalExecutor")
    assert env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"
    monkeypatch.setenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "3")
    env = cluster.environment(tmp_path, 8322, "postgresql://x@127.0.0.1/airflow", "LocalExecutor")
    assert env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "3"
    compose = yaml.safe_load((project_root() / "docker-compose.yml").read_text())
    assert compose["x-airflow"]["environment"]["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"


def test_the_scheduler_looks_for_finished_tasks_four_times_a_second(tmp_path, monkeypatch) -> None:
    """Each dbt level of the night waits for the scheduler to see its upstream finished; an idle
    scheduler loop sleeps 1 s by default. The local clusters and the compose file set 0.25 s; a
    value the user set is kept."""
    import yaml

    from tieout.paths import project_root

    name = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/tieout")
    monkeypatch.delenv(name, raising=False)
    env = cluster.environment(tmp_path, 8322, "postgresql://x@127.0.0.1/airflow", "LocalExecutor")
    assert env[name] == "0.25"
    monkeypatch.setenv(name, "2")
    env = cluster.environment(tmp_path, 8322, "postgresql://x@127.0.0.1/airflow", "LocalExecutor")
    assert env[name] == "2"
    compose = yaml.safe_load((project_root() / "docker-compose.yml").read_text())
    assert compose["x-airflow"]["environment"][name] == "0.25"
