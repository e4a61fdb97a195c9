"""
### tieout_nightly

Every night: pull customers, products, orders, invoices and payments out of the
systems that own them, load them raw into the warehouse, build one canonical version
of each entity with dbt, validate it, measure how far every system has drifted,
push agreed values back, and write the drift report for finance.

| group | what it does |
|---|---|
| `extract` | a task per (source, stream) in its source's pool; `outcome` records failed ones |
| `transform` | one `dbt build` (Cosmos watcher mode), a group per layer, run+test per model |
| `validate` | a task per entity: its suites on changed rows, whole tables on schedule |
| `reconcile` | every system against canonical, field by field; findings with history |
| `reverse_etl` | a gate per entity (skips on a critical failure), verified writes; stopped: held |
| `report` | the drift report (Browse → Drift reports), CSV and `recon.drift_runs` |
| `integration_health` | sources and targets healthy, degraded or failing (Browse → Integrations) |

A failed stream stays red, but `extract.outcome` runs whatever the streams ended as and the
night goes on with the sources that answered: their findings are exact, the failed source's are
kept as last seen and marked stale, reverse ETL sends nothing that depends on it, and the drift
report names it at its top. Only a night where no stream loaded stops at `extract.outcome`.

Updates the Assets `raw.<source>__<stream>` and `canonical.<entity>` so other DAGs can be
scheduled on them. Re-running a date is safe: every stage is idempotent and sends no
duplicate write. Logic lives in `include/tieout/`; this file only wires the stages.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import (
    Asset,
    Param,
    TaskGroup,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

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


def table_asset(table: str) -> Asset:
    schema, name = table.split(".", 1)
    return Asset(name=table, uri=f"tieout://warehouse/{schema}/{name}")


def run_id() -> str:
    return str(get_current_context()["run_id"])


@task
def prepare_warehouse() -> list[str]:
    """Check the config and apply pending warehouse migrations before any stage writes."""
    return orchestration.prepare_warehouse(run_id())


# a stream already retries each request (tieout.http.retry: its waits add up to at most 15.5 s
# for a source that answers 5xx to everything); the task's own retries come 10 s after, so a
# source down all night holds extract.outcome about 30 s (the CRM, whose token fails at once)
# to about 70 s, not the 30 s per retry of default_args on top (bench/RESULTS.md)
@task(retry_delay=timedelta(seconds=10), retry_exponential_backoff=False)
def extract_stream(source: str, stream: str) -> dict:
    """Page one stream from its saved cursor into raw.<source>__<stream>."""
    return orchestration.extract_stream(source, stream, run_id())


@task(trigger_rule=TriggerRule.ALL_DONE)
def extract_outcome() -> dict:
    """Once every stream is done, failed or not: record the failed ones (error, since when) so
    the night goes on with the sources that answered; fails when no stream loaded."""
    return orchestration.extract_outcome(run_id())


@task(outlets=[table_asset(t) for t in orchestration.canonical_tables()])
def transform_summary() -> dict:
    """Record what the canonical layer holds after dbt, and its build id for validation."""
    return orchestration.record_transform(run_id())


@task
def validate(entity: str) -> dict:
    """Run the entity's expectation suites, on the rows changed since their last validation or
    on whole tables (nights of validation.yml, or param full_validation); a critical failure
    skips the entity's reverse-ETL gate."""
    context = get_current_context()
    full = bool(context["params"].get("full_validation"))
    day = context.get("logical_date")
    return orchestration.validate_entity(run_id(), entity, full, day.date() if day else None)


@task
def validation_summary() -> dict:
    """Bind the validation to its build, build Data Docs, record the stage's figures."""
    return orchestration.finish_validation(run_id())


@task
def reconcile() -> dict:
    """Compare every system with canonical; merge findings into their history."""
    return orchestration.reconcile(run_id())


@task
def gate(entity: str) -> None:
    """Skipped when a critical expectation failed for this entity: nothing is written to it."""
    orchestration.gate(run_id(), entity)


@task(trigger_rule=TriggerRule.NONE_FAILED)
def write_back() -> dict:
    """Verify last run's writes, then send this run's corrections (blocked entities skipped)."""
    return orchestration.reverse_etl(run_id())


@task(trigger_rule=TriggerRule.NONE_FAILED)
def report() -> dict:
    """Write the drift report, its CSV and the recon.drift_runs row."""
    return orchestration.report(run_id())


@task(trigger_rule=TriggerRule.ALL_DONE)
def integration_health() -> dict:
    """Judge every source and reverse-ETL target; alert when a state changes."""
    return orchestration.integration_health(run_id())


@dag(
    dag_id="tieout_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["tieout", "nightly"],
    doc_md=__doc__,
    params={
        "full_validation": Param(
            False,
            type="boolean",
            description="Validate every suite on its whole table tonight (otherwise only on "
            "the nights of include/config/validation.yml).",
        )
    },
)
def tieout_nightly() -> None:
    prepared = prepare_warehouse()

    with TaskGroup("extract", tooltip="Source APIs into raw.*, exactly once") as extract:
        streams = [
            extract_stream.override(
                task_id=f"{source}__{stream}",
                pool=plan.pool_name(source),
                outlets=[table_asset(f"raw.{source}__{stream}")],
            )(source, stream)
            for source, stream in plan.streams()
        ]
        # a failed stream stays red, but the night goes on from here with what did load
        streams >> extract_outcome.override(task_id="outcome")()

    transform = transform_task_group("transform")

    with TaskGroup("validate", tooltip="Great Expectations on raw and canonical") as validation:
        validated = {
            entity: validate.override(
                task_id=entity,
                priority_weight=orchestration.validation_weight(suites),
                weight_rule="absolute",
            )(entity)
            for entity, suites in orchestration.validation_groups().items()
        }
        list(validated.values()) >> validation_summary.override(task_id="summary")()

    with TaskGroup("reconcile", tooltip="Every system against canonical, field by field"):
        reconciled = reconcile.override(task_id="findings")()

    with TaskGroup("reverse_etl", tooltip="Push agreed values back, exactly once") as reverse:
        gates = []
        for entity in orchestration.writable_entities():
            gates.append(gate.override(task_id=f"gate_{entity}")(entity))
            if entity in validated:
                validated[entity] >> gates[-1]
        gates >> write_back()

    with TaskGroup("report", tooltip="The drift report for finance") as reporting:
        report.override(task_id="drift_report")()

    prepared >> extract >> transform >> transform_summary() >> validation >> reconciled
    reconciled >> reverse >> reporting >> integration_health()


tieout_nightly()
