"""What the Airflow DAG needs to render the dbt project with astronomer-cosmos, one task per node.

The grid reads like the project: the transform group holds a group per folder (seeds, snapshots,
models > staging > <source>, intermediate, canonical, finance), and each model is a group of its
run and its tests (TestBehavior.AFTER_EACH). dbt runs in Cosmos's watcher mode by default: one
producer task runs a single `dbt build` of the project and each model's tasks report that model's
status and dbt log as it finishes (polling for it, see WATCHER_CONSUMER_ARGS); clearing one model's
task reruns that model alone. `TIEOUT_DBT_EXECUTION_MODE=local` renders one dbt invocation per
node instead (each task pays dbt's start-up; docs/transform.md has both measured).

Nothing here touches the database or runs dbt at import or DAG-parse time: the graph comes from
a manifest written beforehand (`tieout transform --parse-only`, `tieout demo`, or a build that
parsed the project; `make install` does not write it), and the warehouse connection is resolved
only when a task runs. Without a manifest the DAG still parses and shows one task that fails with
the command that fixes it.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from tieout.paths import dbt_project_dir

PROFILE_NAME = "tieout"
TARGET_NAME = "warehouse"
MISSING_MANIFEST = (
    "dbt manifest not found at {path}; run `tieout transform --parse-only` (tieout demo "
    "does this) so Airflow can render the dbt project without parsing it at DAG load"
)


# The watcher's `dbt build` runs as a process of its own and Cosmos learns each model's status
# from the JSON lines dbt prints: a console silenced by DBT_QUIET or DBT_LOG_LEVEL in the
# environment would leave every model task waiting, so the task sets dbt's console to info.
DBT_CONSOLE = {"DBT_QUIET": "false", "DBT_LOG_LEVEL": "info"}


def manifest_path() -> Path:
    return dbt_project_dir() / "target" / "manifest.json"


def manifest_ready() -> bool:
    return manifest_path().is_file()


def prepare_dbt_environment(context: Any = None) -> None:
    """Task-time hook: put the warehouse profile (TIEOUT_DBT_*) into this worker's environment.

    Runs inside the task, so the Airflow connection `tieout_warehouse` (or TIEOUT_DATABASE_URL,
    or the embedded server) is resolved on the worker and the password is never in the DAG.
    """
    from tieout.transform.runner import dbt_env

    os.environ.update(dbt_env())
    os.environ.update(DBT_CONSOLE)


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


EXECUTION_MODES = ("watcher", "local")


def execution_mode() -> str:
    """`watcher` (one dbt build, a task per node reporting it) or `local` (a dbt per node)."""
    mode = os.environ.get("TIEOUT_DBT_EXECUTION_MODE", "watcher").strip().lower()
    if mode not in EXECUTION_MODES:
        raise ValueError(
            f"TIEOUT_DBT_EXECUTION_MODE={mode!r}: expected one of {', '.join(EXECUTION_MODES)}"
        )
    return mode


def cosmos_configs(
    select: list[str] | None = None, exclude: list[str] | None = None
) -> dict[str, Any]:
    """The project, profile, render and execution configs for DbtTaskGroup or DbtDag."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    project = dbt_project_dir()
    watcher = execution_mode() == "watcher"
    return {
        "project_config": ProjectConfig(
            dbt_project_path=project,
            manifest_path=manifest_path(),
            install_dbt_deps=False,
            partial_parse=True,
        ),
        "profile_config": ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=TARGET_NAME,
            profiles_yml_filepath=project / "profiles.yml",
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            group_nodes_by_folder=True,
            select=select or [],
            exclude=exclude or [],
            emit_datasets=False,
            should_detach_multiple_parents_tests=False,
            enable_mock_profile=False,
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if watcher else ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # watcher mode's one build runs dbt as a process of its own and reads its JSON log
            # lines; in-process, Cosmos turned every event dbt fires (debug ones too) into an
            # XCom push from the task (bench/RESULTS.md: the build took three times as long).
            # A model task that runs dbt itself (a cleared or retried one) keeps dbtRunner.
            setup_operator_args={"invocation_mode": InvocationMode.SUBPROCESS} if watcher else None,
            dbt_executable_path=dbt_executable(),
        ),
    }


# A manual Airflow 3 run may have no logical date; then the day it was triggered for counts.
AS_OF_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
# The as-of date reaches dbt as this environment variable, not as a var: dbt parses the whole
# project again whenever a var changes, and the date changes every night (2 s of each build at
# this project's size); a changed environment variable re-parses only the model that reads it
# (receivables_aging). `--vars '{as_of_date: ...}'` still wins for someone running dbt by hand.
AS_OF_DATE_ENV = "TIEOUT_AS_OF_DATE"


# Watcher mode: a model's task waits for its model in the one `dbt build` by polling (poke mode,
# every second) instead of deferring to the triggerer. Deferring lost a model's task to Airflow's
# race between a deferral's exit and its trigger firing at once ("task state changed
# externally", apache/airflow#67287): the task was failed and retried 50 s later. A waiting
# task holds a worker slot, but while dbt builds nothing else in the night runs.
# A model dbt never reports (none is expected) fails its task after two hours instead of holding
# a worker slot for the sensor default of seven days.
WATCHER_CONSUMER_ARGS = {"deferrable": False, "poke_interval": 1, "mode": "poke", "timeout": 7200}

# A dbt node's retry reruns that node alone (Cosmos falls back to one dbt invocation for it):
# waiting the night's 30 s and more before it only delays the models downstream.
DBT_RETRY_ARGS = {"retry_delay": timedelta(seconds=5), "retry_exponential_backoff": False}


def operator_args(as_of_date: str = AS_OF_DATE) -> dict[str, Any]:
    """Arguments every cosmos task gets: the task-time profile hook, the run's as-of date, a
    prompt retry, and in watcher mode how a model's task waits for its model."""
    args: dict[str, Any] = {
        "append_env": True,
        "pre_execute": prepare_dbt_environment,
        "install_deps": False,
        "env": {AS_OF_DATE_ENV: as_of_date},
        **DBT_RETRY_ARGS,
    }
    if execution_mode() == "watcher":
        args.update(WATCHER_CONSUMER_ARGS)
    return args


# When a task runs, Airflow parses the DAG file again to find it, in the task's own process
# (Airflow's parsing context names the task). Rendering the whole project then was most of each
# task's parse (bench/RESULTS.md), so a task builds only what it needs: a task outside the
# transform group gets a stand-in for it, and a model's task (its run, its tests, a seed, a
# snapshot) gets the group with that one node selected, which holds the same task with the same
# arguments (tests/unit/transform/test_cosmos_parsing.py checks every one). The producer, a
# task whose name the manifest does not hold, and every parse with no task named (the
# dag-processor, `airflow dags test`), render the whole project.
NODE_TASK_SUFFIXES = ("run", "test", "seed", "snapshot")


def reported_node(task_id: str, group_id: str) -> str | None:
    """The dbt node a task of the transform group reports, by name: `<folders>.<model>.run`
    and `.test` for a model with tests, `<node>_run`, `_seed`, `_snapshot` otherwise; None for
    the group's own tasks (the producer and its gate)."""
    parts = task_id.removeprefix(f"{group_id}.").split(".")
    if len(parts) > 1 and parts[-1] in NODE_TASK_SUFFIXES:
        return parts[-2]
    for suffix in NODE_TASK_SUFFIXES:
        if parts[-1].endswith(f"_{suffix}"):
            return parts[-1].removesuffix(f"_{suffix}")
    return None


def manifest_has_node(name: str) -> bool:
    """Whether the manifest holds a model, seed or snapshot of this name (a task someone added
    to the group with a name like a node's renders the whole project rather than nothing). A
    search of the manifest's text: a few milliseconds, where loading its JSON takes 20."""
    pattern = rf'"unique_id":\s*"(?:model|seed|snapshot)\.[^"]+\.{re.escape(name)}"'
    return re.search(pattern, manifest_path().read_text()) is not None


def stand_in_group(group_id: str) -> Any:
    """What a task outside the transform group parses instead of the dbt project: an empty
    group (nothing in it runs in that process; the scheduler works from the whole DAG)."""
    from airflow.sdk import TaskGroup

    with TaskGroup(group_id=group_id) as group:
        pass
    return group


def transform_task_group(group_id: str = "transform", **kwargs: Any) -> Any:
    """A DbtTaskGroup of the whole project, or, without a manifest, a group with one task that
    fails with the command to run. Call it inside a `with DAG(...)` block. In a task's own parse
    (see NODE_TASK_SUFFIXES) only what that task needs."""
    if not manifest_ready():
        from airflow.sdk import TaskGroup, task

        message = MISSING_MANIFEST.format(path=manifest_path())
        with TaskGroup(group_id=group_id, tooltip=message) as group:

            @task(task_id="dbt_manifest_missing", doc_md=message)
            def dbt_manifest_missing() -> None:
                raise RuntimeError(message)

            dbt_manifest_missing()
        return group

    from airflow.sdk import get_parsing_context

    running = get_parsing_context().task_id
    if running is not None and not running.startswith(f"{group_id}."):
        return stand_in_group(group_id)

    from cosmos import DbtTaskGroup

    select = kwargs.pop("select", None)
    node = reported_node(running, group_id) if running else None
    if node and not select and manifest_has_node(node):
        select = [node]
    configs = cosmos_configs(select, kwargs.pop("exclude", None))
    args = {**operator_args(), **kwargs.pop("operator_args", {})}
    return DbtTaskGroup(group_id=group_id, operator_args=args, **configs, **kwargs)
