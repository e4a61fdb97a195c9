"""The validate stage: run the GX suites, record every verdict in ops.validation_results, build
Data Docs, and say which entities reverse ETL must leave alone. It never changes the data it checks.
"""

from __future__ import annotations

import hashlib
import json
import time
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tieout import db, runs
from tieout.config import Validation, load_validation
from tieout.validate import data_docs
from tieout.validate import scope as scopes
from tieout.validate.context import data_docs_dir, open_context, warehouse_variable
from tieout.validate.fingerprints import kept_runs, record_validation
from tieout.validate.suites import BATCH_DEFINITION, CHANGES_DATASOURCE, DATASOURCE, gx_root

SAMPLE_KEYS = 20


class NotValidated(LookupError):
    """The run has no validation results, so nobody can say whether an entity is safe."""


class EntityBlocked(RuntimeError):
    """A critical expectation about this entity failed; reverse ETL must not write it."""


@dataclass(frozen=True)
class SuiteFile:
    name: str
    schema: str
    table: str
    key: str
    entity: str | None
    expectations: int
    digest: str = ""
    table_checks: frozenset[str] = frozenset()

    @property
    def target(self) -> scopes.Target:
        return scopes.Target(
            self.name, self.schema, self.table, self.key, self.digest, self.table_checks
        )


@dataclass
class Verdict:
    suite: str
    expectation: str
    expectation_type: str
    severity: str
    entity: str | None
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    failing_keys: list[Any] = field(default_factory=list)
    description: str | None = None
    exception: str | None = None
    scope: str = "table"  # the whole table, or `changes`: the rows changed since last time

    def row(self, run_id: str) -> tuple[Any, ...]:
        return (
            run_id,
            self.suite,
            self.expectation,
            self.expectation_type,
            self.severity,
            self.entity,
            self.success,
            json.dumps(self.observed_value, default=str),
            self.unexpected_count,
            json.dumps(self.failing_keys, default=str),
            self.description,
            self.exception,
            self.scope,
        )


def suite_files(root: Path | None = None) -> list[SuiteFile]:
    """The suites in expectations/gx, raw contracts first, read without importing GX."""
    root = root or gx_root()
    found = []
    for path in sorted((root / "expectations").rglob("*.json")):
        text = path.read_text()
        data = json.loads(text)
        schema, _, table = data["name"].partition(".")
        meta = data.get("meta", {})
        found.append(
            SuiteFile(
                data["name"],
                schema,
                table,
                meta.get("key", "_pk"),
                meta.get("entity"),
                len(data["expectations"]),
                hashlib.sha256(text.encode()).hexdigest(),
                frozenset(
                    e["meta"]["name"]
                    for e in data["expectations"]
                    # no scope recorded: an older suite, so the whole table
                    if e.get("meta", {}).get("scope", "table") == "table"
                ),
            )
        )
    return sorted(found, key=lambda s: (s.schema != "raw", s.name))


def select_suites(selection: list[str] | None, root: Path | None = None) -> list[SuiteFile]:
    """`canonical.invoices` picks one suite, `canonical` or `raw` a whole layer."""
    available = suite_files(root)
    if not selection:
        return available
    chosen = [
        suite
        for suite in available
        if any(suite.name == s or suite.name.startswith(s.rstrip(".") + ".") for s in selection)
    ]
    unknown = [
        s
        for s in selection
        if not any(x.name == s or x.name.startswith(s.rstrip(".") + ".") for x in available)
    ]
    if unknown:
        names = ", ".join(s.name for s in available)
        raise KeyError(f"no suite named {', '.join(unknown)} (expected one of {names})")
    return chosen


def _sample(result: dict[str, Any], key: str) -> list[Any]:
    rows = result.get("details", {}).get("unexpected_rows") if result.get("details") else None
    if rows:
        return [row.get("key", row) if isinstance(row, dict) else row for row in rows][:SAMPLE_KEYS]
    index = result.get("unexpected_index_list") or result.get("partial_unexpected_index_list")
    if index:
        return [row.get(key, row) if isinstance(row, dict) else row for row in index][:SAMPLE_KEYS]
    return list(result.get("partial_unexpected_list") or [])[:SAMPLE_KEYS]


def _exception(info: Any) -> str | None:
    """GX 1.x reports errors either flat or keyed by the metric that raised."""
    if not info:
        return None
    if isinstance(info, dict) and "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    if isinstance(info, dict):
        for value in info.values():
            message = _exception(value)
            if message:
                return message
    return None


def verdicts(suite: SuiteFile, suite_result: Any, scope: str = "table") -> list[Verdict]:
    found = []
    for result in suite_result.results:
        config = result.expectation_config
        meta = config.meta or {}
        body: dict[str, Any] = dict(result.result or {})
        exception = _exception(result.exception_info)
        observed = body.get("observed_value")
        unexpected = body.get("unexpected_count")
        if config.type == "unexpected_rows_expectation" and isinstance(observed, int):
            unexpected = observed
        if observed is None and "element_count" in body:
            observed = {
                k: body[k]
                for k in (
                    "element_count",
                    "unexpected_count",
                    "unexpected_percent",
                    "missing_count",
                )
                if k in body
            }
        found.append(
            Verdict(
                suite=suite.name,
                expectation=meta.get("name") or config.type,
                expectation_type=meta.get("narrowed_from") or config.type,
                severity=meta.get("severity") or str(config.severity.value),
                entity=meta.get("entity"),
                success=bool(result.success) and exception is None,
                observed_value=observed,
                unexpected_count=unexpected,
                failing_keys=_sample(body, suite.key),
                description=config.description,
                exception=exception[:2000] if exception else None,
                scope=scope,
            )
        )
    return found


def missing_table(suite: SuiteFile) -> Verdict:
    return Verdict(
        suite=suite.name,
        expectation="table exists",
        expectation_type="table_exists",
        severity="critical" if suite.entity else "warning",
        entity=suite.entity,
        success=False,
        observed_value=None,
        description=f"{suite.name} must exist before it can be validated.",
        exception=f"relation {suite.name} does not exist",
    )


def existing_tables(url: str, suites: list[SuiteFile]) -> set[str]:
    with db.connect(url) as conn:
        rows = conn.execute(
            "select name from unnest(%s::text[]) as name where to_regclass(name) is not null",
            ([s.name for s in suites],),
        ).fetchall()
    return {row[0] for row in rows}


def write_verdicts(url: str, run_id: str, suites: list[str], found: list[Verdict]) -> None:
    """Replace this run's rows for these suites; other runs and suites are left as they are."""
    with db.connect(url) as conn, conn.transaction():
        conn.execute(
            "delete from ops.validation_results where run_id = %s and suite = any(%s)",
            (run_id, suites),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """insert into ops.validation_results (run_id, suite, expectation,
                       expectation_type, severity, entity, success, observed_value,
                       unexpected_count, failing_keys, description, exception, scope)
                   values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s, %s)""",
                [v.row(run_id) for v in found],
            )


def blocked_from(found: list[Verdict]) -> dict[str, list[str]]:
    blocked: dict[str, list[str]] = {}
    for v in found:
        if not v.success and v.severity == "critical" and v.entity:
            blocked.setdefault(v.entity, []).append(f"{v.suite}: {v.expectation}")
    return {entity: sorted(names) for entity, names in sorted(blocked.items())}


def full_reason(full: bool | None, day: date, settings: Validation) -> str | None:
    """Why every suite reads its whole table tonight, or None when changed rows will do.

    `full` True: asked for (`--full`, DAG param `full_validation`); None: the nights of
    validation.yml; False: changed rows wherever a baseline allows, whatever the night."""
    if full:
        return "whole tables asked for"
    if full is None and settings.full_on(day):
        return f"whole tables on {', '.join(settings.full_suites_on)} (validation.yml)"
    return None


def _name(expectation: Any) -> str:
    return str((expectation.meta or {}).get("name"))


def on_changed_rows(expectation: Any, suite: SuiteFile) -> Any:
    """A uniqueness expectation that held at the last validation, narrowed to tonight's changed
    rows: the rows of the whole table that hold a value a changed or new row holds, where more
    than one row holds it. Rows unchanged since then were unique among themselves, so a
    duplicate has at least one changed row. As GX reports it, one unexpected row per row that
    holds a duplicated value, by the suite's key. None for any other expectation (it keeps
    reading the whole table)."""
    import great_expectations as gx

    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type == "expect_column_values_to_be_unique":
        columns = [kwargs["column"]]
        skip = ""
    elif expectation.expectation_type == "expect_compound_columns_to_be_unique":
        columns = list(kwargs["column_list"])
        if kwargs.get("ignore_row_if", "all_values_are_missing") != "all_values_are_missing":
            return None
        # a row with every column null is ignored, as GX does
        skip = "and not (" + " and ".join(f"changed.{c} is null" for c in columns) + ")"
    else:
        return None

    def value(alias: str) -> str:
        if len(columns) == 1:
            return f"{alias}.{columns[0]}"
        # as GX groups them: two nulls are equal
        return "cast(row(" + ", ".join(f"{alias}.{c}" for c in columns) + ") as text)"

    table = f"{suite.schema}.{suite.table}"
    meta = {**(expectation.meta or {}), "scope": "changes"}
    meta["narrowed_from"] = expectation.expectation_type
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"with changed as (select * from {{batch}}), "
            f"duplicated as ("
            f"select {value('changed')} as value from changed, {table} as other "
            f"where {value('other')} = {value('changed')} {skip} "
            f"group by {value('changed')} having count(distinct other.ctid) > 1) "
            f"select whole.{suite.key} as key, {value('whole')} as value "
            f"from {table} as whole "
            f"where {value('whole')} in (select duplicated.value from duplicated) "
            f"order by 1"
        ),
        description=(
            f"{expectation.description or ''} On the rows changed since the last validation: "
            f"the rows of {table} that hold a value of {', '.join(columns)} that a changed or "
            f"new row holds and another row holds too."
        ).strip(),
        meta=meta,
    )


def run_changes(context: Any, suite: SuiteFile, scope: scopes.Scope, gx_run: Any) -> list[Verdict]:
    """Run a suite's `row` expectations on its changed rows and the rest on the whole table;
    store one result for Data Docs (found there by the run's name). Returns the verdicts."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator
    from great_expectations.validator.validator import calc_validation_statistics

    stored = context.suites.get(suite.name)
    result_format = context.checkpoints.get(suite.name).result_format
    narrowable = scope.whole_table - scope.failed_last_time
    narrowed: dict[str, Any] = {}
    for e in stored.expectations:
        if _name(e) in narrowable and (instead := on_changed_rows(e, suite)) is not None:
            narrowed[_name(e)] = instead
    whole_table = scope.whole_table - set(narrowed)
    on_changes = [
        narrowed.get(_name(e)) or copy(e)
        for e in stored.expectations
        if _name(e) not in whole_table
    ]
    on_table = [copy(e) for e in stored.expectations if _name(e) in whole_table]
    found: list[Verdict] = []
    parts: list[tuple[Any, Any]] = []
    for source, expectations, label in (
        (CHANGES_DATASOURCE, on_changes, "changes"),
        (DATASOURCE, on_table, "table"),
    ):
        if not expectations:
            continue
        batch = (
            context.data_sources.get(source)
            .get_asset(suite.name)
            .get_batch_definition(BATCH_DEFINITION)
        )
        validator = Validator(batch_definition=batch, result_format=result_format)
        part = gx.ExpectationSuite(name=suite.name, expectations=expectations)
        result = validator.validate_expectation_suite(part)
        found.extend(verdicts(suite, result, label))
        parts.append((result, validator))
    results = [r for result, _ in parts for r in result.results]
    statistics = calc_validation_statistics(results)
    first, validator = parts[-1]
    meta = dict(first.meta)
    meta.update(
        {
            "run_id": gx_run,
            "validation_time": gx_run.run_time,
            "tieout_scope": scope.reason,
        }
    )
    merged = ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta=meta,
    )
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id,
        run_id=gx_run,
        batch_identifier=validator.active_batch_id,
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=merged,
        suite_validation_result_identifier=identifier,
        expectation_suite_identifier=suite_id,
    )
    return found


def validate(
    run_id: str | None = None,
    suites: list[str] | None = None,
    url: str | None = None,
    build_docs: bool = True,
    full: bool | None = None,
    day: date | None = None,
    stage: str = "validate",
    bind: bool = True,
) -> dict[str, Any]:
    """Run the suites (all, or the named ones) and return the figures recorded for the stage.

    Each suite reads its whole table or only the rows changed since its last validation (see
    tieout.validate.scope and `full_reason`). A critical failure does not fail the stage: it
    blocks reverse ETL for its entity (see `blocked_entities`). The stage fails only when
    validation itself cannot run. `bind` False leaves binding the run to its build (and the
    fingerprints reverse ETL checks) to `finish`, for the DAG's one task per entity.
    """
    run_id = run_id or runs.current_run_id()
    url = db.role_url("validator", url)
    chosen = select_suites(suites)
    settings = load_validation()
    reason = full_reason(full, day or datetime.now(UTC).date(), settings)
    with runs.record_stage(run_id, stage, url) as figures:
        started = time.monotonic()
        present = existing_tables(url, chosen)
        found: list[Verdict] = [missing_table(s) for s in chosen if s.name not in present]
        planned: dict[str, scopes.Scope] = {}
        with db.connect(url, autocommit=True) as conn:
            for suite in chosen:
                if suite.name in present:
                    planned[suite.name] = scopes.plan(
                        conn, suite.target, reason, settings.max_changed_share
                    )
        with warehouse_variable(url):
            context = open_context()
            from great_expectations.core.run_identifier import RunIdentifier

            gx_run = RunIdentifier(run_name=run_id, run_time=datetime.now(UTC))
            for suite in chosen:
                if suite.name not in present:
                    continue
                if planned[suite.name].mode == "changes":
                    found.extend(run_changes(context, suite, planned[suite.name], gx_run))
                    continue
                result = context.checkpoints.get(suite.name).run(run_id=gx_run)
                for suite_result in result.run_results.values():
                    found.extend(verdicts(suite, suite_result))
        write_verdicts(url, run_id, [s.name for s in chosen], found)
        with db.connect(url) as conn, conn.transaction():
            for suite in chosen:
                if suite.name in planned:
                    scopes.advance(conn, run_id, suite.target, planned[suite.name])
        if bind:
            figures["build_id"] = record_validation(run_id, url)
        docs = None
        if build_docs:
            with warehouse_variable(url):
                docs = publish_data_docs(context, url, run_id, chosen)
        failed = [v for v in found if not v.success]
        modes = {s.mode for s in planned.values()}
        figures.update(
            {
                "mode": "changes" if "changes" in modes else "full",
                "full_reason": reason,
                "scopes": {name: s.describe() for name, s in planned.items()},
                "suites": len(chosen),
                "expectations": len(found),
                "on_changed_rows": sum(v.scope == "changes" for v in found),
                "passed": len(found) - len(failed),
                "failed_critical": sum(v.severity == "critical" for v in failed),
                "failed_warning": sum(v.severity == "warning" for v in failed),
                "blocked": blocked_from(found),
                "warnings": sorted(
                    f"{v.suite}: {v.expectation}" for v in failed if v.severity == "warning"
                ),
                "data_docs": str(docs) if docs else None,
                "validate_s": round(time.monotonic() - started, 3),
            }
        )
        return dict(figures)


def build_data_docs(context: Any, identifiers: list[Any], chosen: list[SuiteFile]) -> Path | None:
    """Data Docs for these results and the suites' own pages; None when nothing ran."""
    if not identifiers:
        return None
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    # the suites' own pages too, so the index lists suites beside their results
    suite_pages = [ExpectationSuiteIdentifier(name=s.name) for s in chosen]
    context.build_data_docs(resource_identifiers=[*identifiers, *suite_pages])
    data_docs.localize(data_docs_dir())
    return data_docs_dir() / "index.html"


def publish_data_docs(context: Any, url: str, run_id: str, chosen: list[SuiteFile]) -> Path | None:
    """Data Docs for every stored result of this run, after removing the stored results of
    every other run outside the window the fingerprints keep (tieout.validate.fingerprints
    kept_runs): GX drops a page whose result is gone when it builds, and its index reads every
    stored result, so without this the site, the disk and the build grow with every night
    (bench/validation_history.py)."""
    with db.connect(url) as conn:
        kept = kept_runs(conn) | {run_id}
    store = context.validation_results_store
    identifiers = []
    for key in store.list_keys():
        if key.run_id.run_name == run_id:
            identifiers.append(key)
        elif key.run_id.run_name not in kept:
            store.remove_key(key)
    return build_data_docs(context, identifiers, chosen)


def entity_groups(root: Path | None = None) -> dict[str, list[str]]:
    """Suites by the entity they guard (`no_entity` for raw streams no entity reads), the
    DAG's one validate task per group."""
    groups: dict[str, list[str]] = {}
    for suite in suite_files(root):
        groups.setdefault(suite.entity or NO_ENTITY, []).append(suite.name)
    return dict(sorted(groups.items()))


NO_ENTITY = "no_entity"


def finish(run_id: str, url: str | None = None, build_docs: bool = True) -> dict[str, Any]:
    """After the DAG's validate tasks: bind the run's validation to the build it checked (with
    the fingerprints reverse ETL compares), build Data Docs once for every suite's result of
    the run, and record the stage's figures from ops.validation_results."""
    run_id = run_id or runs.current_run_id()
    url = db.role_url("validator", url)
    chosen = suite_files()
    with runs.record_stage(run_id, "validate", url) as figures:
        started = time.monotonic()
        with db.connect(url) as conn:
            rows = conn.execute(
                """select suite, success, severity, entity, expectation, scope
                   from ops.validation_results where run_id = %s""",
                (run_id,),
            ).fetchall()
            parts = conn.execute(
                """select stage, figures, extract(epoch from now() - started_at)
                   from ops.stage_runs
                   where run_id = %s and stage like 'validate:%%' and status = 'success'""",
                (run_id,),
            ).fetchall()
        validated = {row[0] for row in rows}
        missing = [s.name for s in chosen if s.name not in validated]
        if missing:
            raise NotValidated(f"run {run_id} has no results for {', '.join(missing)}")
        figures["build_id"] = record_validation(run_id, url)
        docs = None
        if build_docs:
            with warehouse_variable(url):
                docs = publish_data_docs(open_context(), url, run_id, chosen)
        failed = [r for r in rows if not r[1]]
        found = [
            Verdict(r[0], r[4], "", r[2], r[3], bool(r[1]), scope=r[5]) for r in rows if not r[1]
        ]
        modes = {(f or {}).get("mode") for _, f, _ in parts}
        figures.update(
            {
                "mode": "changes" if "changes" in modes else "full",
                "suites": len(validated),
                "expectations": len(rows),
                "on_changed_rows": sum(r[5] == "changes" for r in rows),
                "passed": len(rows) - len(failed),
                "failed_critical": sum(r[2] == "critical" for r in failed),
                "failed_warning": sum(r[2] == "warning" for r in failed),
                "blocked": blocked_from(found),
                "warnings": sorted(f"{r[0]}: {r[4]}" for r in failed if r[2] == "warning"),
                "data_docs": str(docs) if docs else None,
                "entity_s": {stage: (f or {}).get("validate_s") for stage, f, _ in parts},
                "finish_s": round(time.monotonic() - started, 3),
                # from the first entity's start to now: the stage's wall time in the DAG
                "validate_s": round(max((float(p[2]) for p in parts), default=0.0), 3),
            }
        )
        return dict(figures)


def blocked_entities(run_id: str, url: str | None = None) -> dict[str, list[str]]:
    """Entity -> the failed critical expectations (`suite: expectation`) of this run.

    Raises NotValidated when the run has no validation results at all: an unvalidated entity is
    not a safe one.
    """
    with db.connect(url) as conn:
        rows = conn.execute(
            """select entity, suite, expectation, success, severity
               from ops.validation_results where run_id = %s""",
            (run_id,),
        ).fetchall()
    if not rows:
        raise NotValidated(f"run {run_id} has no validation results; run `tieout validate` first")
    blocked: dict[str, list[str]] = {}
    for entity, suite, expectation, success, severity in rows:
        if not success and severity == "critical" and entity:
            blocked.setdefault(entity, []).append(f"{suite}: {expectation}")
    return {entity: sorted(names) for entity, names in sorted(blocked.items())}


def warnings_for(run_id: str, url: str | None = None) -> list[dict[str, Any]]:
    """The failed warning expectations of a run, for the drift report."""
    with db.connect(url) as conn:
        cur = conn.execute(
            """select suite, expectation, entity, observed_value, unexpected_count, failing_keys,
                      description
               from ops.validation_results
               where run_id = %s and not success and severity = 'warning'
               order by suite, expectation""",
            (run_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass(frozen=True)
class GateDecision:
    """Whether reverse ETL may write one entity for one run, and if not, why (the failed
    critical expectations). The caller decides what a skip looks like: the Airflow task layer
    (tieout.orchestration) marks the entity's `reverse_etl.gate_<entity>` task skipped, with the
    failed expectations in its log, and the one `reverse_etl.write_back` task still runs and
    leaves the blocked entity alone; the CLI and tests get EntityBlocked."""

    run_id: str
    entity: str
    failures: tuple[str, ...]

    @property
    def skip(self) -> bool:
        return bool(self.failures)

    @property
    def message(self) -> str:
        return f"reverse ETL for {self.entity} is blocked in run {self.run_id}: " + "; ".join(
            self.failures
        )


def gate_decision(run_id: str, entity: str, url: str | None = None) -> GateDecision:
    """May reverse ETL write `entity` for this run? A run without validation results may not."""
    url = db.role_url("validator", url)
    try:
        failures = blocked_entities(run_id, url).get(entity, [])
    except NotValidated as exc:
        failures = [str(exc)]
    if not failures:
        failures = unvalidated(run_id, entity, url)
    return GateDecision(run_id, entity, tuple(failures))


def unvalidated(run_id: str, entity: str, url: str) -> list[str]:
    """The entity's canonical suites that have no result in this run: each task of the DAG
    validates one entity, so results of other entities do not vouch for this one."""
    expected = [s.name for s in suite_files() if s.entity == entity and s.schema != "raw"]
    with db.connect(url) as conn:
        rows = conn.execute(
            """select distinct suite from ops.validation_results
               where run_id = %s and suite = any(%s)""",
            (run_id, expected),
        ).fetchall()
    missing = sorted(set(expected) - {row[0] for row in rows})
    return [f"{name}: not validated in run {run_id}" for name in missing]


def gate(run_id: str, entity: str, url: str | None = None) -> None:
    """Return when reverse ETL may write `entity` for this run; otherwise raise EntityBlocked
    with the reasons."""
    decision = gate_decision(run_id, entity, url)
    if decision.skip:
        raise EntityBlocked(decision.message)
