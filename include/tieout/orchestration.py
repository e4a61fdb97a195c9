"""The plain functions the Airflow DAG calls, one per task, so they can be tested without Airflow.

Nothing here may run at import time: the DAG file imports this module while parsing. This is
where a stage's answer becomes an Airflow task state (skip, fail without retries): the stages
return results or raise their own errors and never import Airflow's exceptions. It is also where
stages are composed when one task needs more than one.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def prepare_warehouse(run_id: str) -> list[str]:
    """Check the config, apply pending migrations and create missing pools before any stage."""
    from tieout import pools, runs
    from tieout.config import load_config
    from tieout.db import migrate

    config = load_config()
    applied = migrate.migrate()
    with runs.record_stage(run_id, "prepare") as figures:
        figures["migrations_applied"] = len(applied)
        figures["sources"] = len(config.sources)
        figures["entities"] = len(config.entities)
        figures["pools"] = pools.ensure_pools(airflow_pools())
    log.info("migrations applied: %s", ", ".join(applied) or "none pending")
    return applied


def extract_stream(source: str, stream: str, run_id: str) -> dict[str, Any]:
    """Extract one stream. A stream whose YAML does not fit its API (a records_path that finds
    no list) fails without the task's retries, which could only repeat it."""
    from tieout.extract.run import StreamMisconfigured
    from tieout.extract.run import extract_stream as run_stream

    try:
        return run_stream(source, stream, run_id)
    except StreamMisconfigured as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def extract_outcome(run_id: str, url: str | None = None) -> dict[str, Any]:
    """After every extract task, whatever their state: record which streams failed (with their
    error and since when) for reconcile, reverse ETL and the report, so the night goes on with
    the sources that answered. Fails without retries when no stream loaded at all."""
    from tieout.extract import outcome, plan

    try:
        return outcome.record(run_id, plan.streams(), url)
    except outcome.NothingExtracted as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def extract_requested(
    source: str, stream: str, run_id: str, conf: dict[str, Any]
) -> dict[str, Any]:
    """A webhook-started run: extract `stream` unless conf `streams` leaves it out (skipped)."""
    wanted = conf.get("streams")
    if wanted is not None and stream not in wanted:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"this run was asked for {', '.join(wanted)} only")
    return extract_stream(source, stream, run_id)


def webhook_sources() -> dict[str, list[str]]:
    """Sources with a `webhook:` block and their streams (config only; safe at parse time)."""
    from tieout.extract import plan

    return {
        source.name: [stream.name for stream in source.streams]
        for source in plan.sources()
        if source.webhook is not None
    }


def record_transform(run_id: str) -> dict[str, Any]:
    """After the dbt task group: what the canonical layer holds now, for the run summary, and
    the build id the validation of this run is bound to (the DAG's dbt tasks run one per model,
    so the build is recorded once they all finished)."""
    from tieout import db, runs
    from tieout.transform.builds import record_build
    from tieout.transform.stage import canonical_counts

    url = db.role_url("transformer")
    with runs.record_stage(run_id, "transform", url) as figures:
        figures["canonical_rows"] = canonical_counts(url)
        figures["build_id"] = record_build(run_id, "airflow", figures["canonical_rows"])
    return dict(figures)


def validate(run_id: str) -> dict[str, Any]:
    from tieout.validate.run import validate as run_validate

    figures = run_validate(run_id)
    log.info("validation: %s", {k: v for k, v in figures.items() if not isinstance(v, list)})
    return figures


def validation_groups() -> dict[str, list[str]]:
    """Entity -> its expectation suites (`no_entity` for raw streams no entity reads), one
    `validate.<entity>` task each. Reads the suites' JSON only (safe at parse time)."""
    import json

    from tieout.paths import project_root

    groups: dict[str, list[str]] = {}
    for path in sorted((project_root() / "expectations" / "gx" / "expectations").rglob("*.json")):
        data = json.loads(path.read_text())
        groups.setdefault(data["meta"].get("entity") or "no_entity", []).append(data["name"])
    return dict(sorted(groups.items()))


def validation_weight(suites: list[str]) -> int:
    """The scheduler's priority for the `validate.<entity>` task of these suites: canonical
    suites read whole tables for their table checks and take the longest, so the entity with the
    most starts first and the stage does not end waiting on one that started last."""
    return sum(10 if name.startswith("canonical.") else 1 for name in suites)


def validate_entity(
    run_id: str, entity: str, full: bool = False, day: Any = None
) -> dict[str, Any]:
    """One entity's suites, on changed rows or whole tables (`full`, or the nights of
    include/config/validation.yml). A critical failure does not fail the task: the entity's
    reverse-ETL gate skips. Binding the run to its build waits for `finish_validation`."""
    from tieout.validate.run import validate as run_validate

    figures = run_validate(
        run_id,
        validation_groups()[entity],
        full=True if full else None,
        day=day,
        stage=f"validate:{entity}",
        bind=False,
        build_docs=False,
    )
    log.info("validation of %s: %s", entity, {k: v for k, v in figures.items() if k != "scopes"})
    for suite, scope in figures["scopes"].items():
        log.info("  %s: %s (%s)", suite, scope["mode"], scope["reason"])
    for name in figures["blocked"].get(entity, []):
        log.warning("  critical failure, reverse ETL will skip %s: %s", entity, name)
    return figures


def finish_validation(run_id: str) -> dict[str, Any]:
    """After every `validate.<entity>` task: bind the validation to its build, build Data Docs
    once, and record the stage's figures (tieout.validate.run.finish)."""
    from tieout.validate.run import finish

    figures = finish(run_id)
    log.info("validation: %s", {k: v for k, v in figures.items() if not isinstance(v, list)})
    return figures


def reconcile(run_id: str) -> dict[str, Any]:
    from tieout.reconcile.run import reconcile as run_reconcile

    return run_reconcile(run_id)


def writable_entities() -> list[str]:
    """Entities reverse ETL may write, from reverse_etl.yml (config only; safe at parse time)."""
    from tieout.config import ReverseEtl, read_yaml
    from tieout.paths import config_dir

    config = ReverseEtl.model_validate(read_yaml(config_dir() / "reverse_etl.yml"))
    return sorted({target.entity for target in config.targets}) if config.enabled else []


def gate(run_id: str, entity: str, url: str | None = None) -> None:
    """Skip the task when a critical expectation failed for the entity, so its gate task and its
    reverse-ETL task show as skipped in the UI with the failed expectations in the log."""
    from tieout.validate.run import gate_decision

    decision = gate_decision(run_id, entity, url)
    if decision.skip:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(decision.message)


def reverse_etl(run_id: str) -> dict[str, Any]:
    """Verify earlier writes, plan, brake, send; blocked entities are skipped inside."""
    from tieout.reverse_etl.run import reverse_etl as run_reverse_etl

    return run_reverse_etl(run_id)


def report(run_id: str) -> dict[str, str]:
    from tieout import db, runs
    from tieout.report.build import report as build_report

    url = db.role_url("reconciler")
    with runs.record_stage(run_id, "report", url) as figures:
        paths = build_report(run_id, url=url)
        figures.update({kind: str(path) for kind, path in paths.items()})
    for kind, path in paths.items():
        log.info("drift report %s: %s", kind, path)
    return {kind: str(path) for kind, path in paths.items()}


def integration_health(run_id: str) -> dict[str, Any]:
    """Judge every source and target, keep the states, alert on a change (tieout.health)."""
    from tieout import db
    from tieout.health.check import check

    outcome = check(run_id, db.role_url("reconciler"))
    for message in outcome["changed"]:
        log.warning("integration health: %s", message)
    return outcome


def raw_tables() -> list[str]:
    """raw.<source>__<stream> for every configured stream (config only; safe at parse time)."""
    from tieout.extract import plan

    return [f"raw.{source}__{stream}" for source, stream in plan.streams()]


def canonical_tables() -> list[str]:
    """The canonical tables entities.yml declares (config only; safe at parse time)."""
    from tieout.config import Entities, read_yaml
    from tieout.paths import config_dir

    entities = Entities.model_validate(read_yaml(config_dir() / "entities.yml")).entities
    return sorted({entity.table for entity in entities.values()} | {"canonical.order_lines"})


def airflow_pools() -> dict[str, int]:
    """Pools the DAG uses: one per source, as many slots as its max_concurrency."""
    from tieout.extract import plan

    return plan.pools()


def on_task_failure(context: dict[str, Any]) -> None:
    """Name the stage and the entity that failed, so the log line says what to look at."""
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    stage, _, rest = task_id.partition(".")
    exception = context.get("exception")
    log.error(
        "tieout stage %r failed in task %r%s: %s",
        stage,
        task_id,
        f" (entity {rest})" if rest else "",
        exception,
    )
