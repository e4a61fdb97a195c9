"""
### tieout_nightly

Every night: pull customers, products, orders, invoices and payments out of the
systems that own them, load them raw into the warehouse, build one canonical version
of each entity with dbt, validate it, measure how far every system has drifted,
push agreed values back, and write the drift report for finance.

| group | what it does |
|---|---|
| `extract` | one task per (source, stream), each in its source's pool `source_<name>` |
| `transform` | one task per dbt model (astronomer-cosmos), tests with each model |

Re-running a date is safe: every stage is idempotent and sends no duplicate write.
Logic lives in `include/tieout/`; this file only wires the stages.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import TaskGroup, dag, get_current_context, task

from tieout import orchestration
from tieout.extract import plan
from tieout.transform.cosmos import transform_task_group

default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": orchestration.on_task_failure,
}


@task
def prepare_warehouse() -> list[str]:
    """Check the config and apply pending warehouse migrations before any stage writes."""
    return orchestration.prepare_warehouse(get_current_context()["run_id"])


@task
def extract_stream(source: str, stream: str) -> dict:
    """Page one stream from its saved cursor into raw.<source>__<stream>."""
    return orchestration.extract_stream(source, stream, get_current_context()["run_id"])


@task
def transform_summary() -> dict:
    """Record what the canonical layer holds after dbt, for the run summary."""
    return orchestration.record_transform(get_current_context()["run_id"])


@dag(
    dag_id="tieout_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["tieout", "nightly"],
    doc_md=__doc__,
)
def tieout_nightly() -> None:
    prepared = prepare_warehouse()

    with TaskGroup("extract", tooltip="Source APIs into raw.*, exactly once") as extract:
        for source, stream in plan.streams():
            extract_stream.override(task_id=f"{source}__{stream}", pool=plan.pool_name(source))(
                source, stream
            )

    transform = transform_task_group("transform")

    prepared >> extract >> transform >> transform_summary()


tieout_nightly()
