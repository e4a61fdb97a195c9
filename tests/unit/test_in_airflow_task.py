"""Code that behaves differently inside an Airflow task must not be fooled by a mere import of
Airflow's task runner (the DAG parser and tests import it too)."""

from __future__ import annotations

import importlib

from tieout.db import in_airflow_task


def test_importing_the_task_runner_is_not_running_a_task(monkeypatch) -> None:
    runner = importlib.import_module("airflow.sdk.execution_time.task_runner")
    monkeypatch.delattr(runner, "SUPERVISOR_COMMS", raising=False)
    assert in_airflow_task() is False


def test_a_running_task_has_the_supervisor_channel(monkeypatch) -> None:
    runner = importlib.import_module("airflow.sdk.execution_time.task_runner")
    monkeypatch.setattr(runner, "SUPERVISOR_COMMS", object(), raising=False)
    assert in_airflow_task() is True
