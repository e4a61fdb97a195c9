"""
### tieout_nightly

Every night: pull customers, products, orders, invoices and payments out of the
systems that own them, load them raw into the warehouse, build one canonical version
of each entity with dbt, validate it, measure how far every system has drifted,
push agreed values back, and write the drift report for finance.

Re-running a date is safe: every stage is idempotent and sends no duplicate write.
Logic lives in `include/tieout/`; this file only wires the stages.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from tieout import orchestration

default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": orchestration.on_task_failure,
}


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
    @task
    def prepare_warehouse() -> list[str]:
        """Apply pending warehouse migrations before any stage writes."""
        return orchestration.prepare_warehouse(get_current_context()["run_id"])

    prepare_warehouse()


tieout_nightly()
