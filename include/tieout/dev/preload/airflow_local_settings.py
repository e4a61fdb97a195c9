"""Airflow's local settings for tieout's local clusters (tieout.dev.cluster puts this folder on
PYTHONPATH; Airflow imports `airflow_local_settings` in each of its processes at start-up).

The process that runs tasks (the scheduler with the LocalExecutor, a Celery worker) imports the
modules every task's DAG-file parse needs: its task processes are forked from it and start with
them loaded, so each task parses the DAG without importing Cosmos, its plugin's FastAPI or tieout's
DAG-time modules again, and a validate task starts with Great Expectations loaded. Only an import
cache: nothing here changes what Airflow does, and a module that fails to import is left to the
task, which reports it as it would anyway.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

PRELOAD = (
    "cosmos",
    "cosmos.converter",
    "cosmos.airflow.task_group",
    "cosmos.operators.watcher",
    "cosmos.operators.local",
    "cosmos.plugin.airflow3",
    "tieout.orchestration",
    "tieout.extract.plan",
    "tieout.transform.cosmos",
    # the validate tasks' Great Expectations: importing it took 3-4 s of each task's CPU (scipy,
    # pydantic models), 7 tasks a night on the 2-core machine
    "great_expectations",
    "tieout.validate.run",
)
RUNS_TASKS = ("scheduler", "celery")


def preload(argv: list[str] | None = None) -> list[str]:
    """Import PRELOAD in a process that runs tasks; returns what it imported."""
    args = sys.argv if argv is None else argv
    if len(args) < 2 or args[1] not in RUNS_TASKS:
        return []
    # what tieout.validate.context.quiet_gx sets before GX is imported: no usage analytics
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    loaded = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - the task reports it when it parses
            logging.getLogger(__name__).warning("not preloaded: %s (%s)", name, error)
            continue
        loaded.append(name)
    return loaded


preload()
