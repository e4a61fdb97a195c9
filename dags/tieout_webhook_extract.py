"""
### tieout_extract_&lt;source&gt;

Extract-only runs of one source, started by `tieout webhooks serve` through Airflow's REST API
when the source pushes signed events (see docs/webhooks.md). No schedule: the nightly
`tieout_nightly` still polls every stream and finds whatever a lost event missed.

One task per stream pages it from its saved cursor into raw.&lt;source&gt;__&lt;stream&gt;;
it is skipped when the run's conf `streams` does not name it.

One active run per source; runs that arrive meanwhile queue. Logic lives in
`include/tieout/`; this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from tieout import orchestration
from tieout.extract import plan

default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
    "on_failure_callback": orchestration.on_task_failure,
}


@task
def extract_requested(source: str, stream: str) -> dict:
    """Page one stream into raw, if the run asked for it."""
    context = get_current_context()
    conf = dict(context["dag_run"].conf or {})
    return orchestration.extract_requested(source, stream, str(context["run_id"]), conf)


def webhook_extract_dag(source: str, streams: list[str]) -> None:
    @dag(
        dag_id=f"tieout_extract_{source}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["tieout", "webhooks", source],
        doc_md=__doc__,
    )
    def extract_only() -> None:
        for stream in streams:
            extract_requested.override(
                task_id=stream,
                pool=plan.pool_name(source),
                outlets=[
                    Asset(
                        name=f"raw.{source}__{stream}",
                        uri=f"tieout://warehouse/raw/{source}__{stream}",
                    )
                ],
            )(source, stream)

    extract_only()


for _source, _streams in orchestration.webhook_sources().items():
    webhook_extract_dag(_source, _streams)
