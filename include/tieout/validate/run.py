"""The validate stage: run the GX suites, record every verdict in ops.validation_results, build
Data Docs, and say which entities reverse ETL must leave alone. It never changes the data it checks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tieout import db, runs
from tieout.validate import data_docs
from tieout.validate.context import data_docs_dir, open_context, warehouse_variable
from tieout.validate.fingerprints import record_validation
from tieout.validate.suites import gx_root

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
        )


def suite_files(root: Path | None = None) -> list[SuiteFile]:
    """The suites in expectations/gx, raw contracts first, read without importing GX."""
    root = root or gx_root()
    found = []
    for path in sorted((root / "expectations").rglob("*.json")):
        data = json.loads(path.read_text())
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


def verdicts(suite: SuiteFile, suite_result: Any) -> list[Verdict]:
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
                expectation_type=config.type,
                severity=meta.get("severity") or str(config.severity.value),
                entity=meta.get("entity"),
                success=bool(result.success) and exception is None,
                observed_value=observed,
                unexpected_count=unexpected,
                failing_keys=_sample(body, suite.key),
                description=config.description,
                exception=exception[:2000] if exception else None,
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
                       unexpected_count, failing_keys, description, exception)
                   values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s)""",
                [v.row(run_id) for v in found],
            )


def blocked_from(found: list[Verdict]) -> dict[str, list[str]]:
    blocked: dict[str, list[str]] = {}
    for v in found:
        if not v.success and v.severity == "critical" and v.entity:
            blocked.setdefault(v.entity, []).append(f"{v.suite}: {v.expectation}")
    return {entity: sorted(names) for entity, names in sorted(blocked.items())}


def validate(
    run_id: str | None = None,
    suites: list[str] | None = None,
    url: str | None = None,
    build_docs: bool = True,
) -> dict[str, Any]:
    """Run the suites (all, or the named ones) and return the figures recorded for the stage.

    A critical failure does not fail the stage: it blocks reverse ETL for its entity (see
    `blocked_entities`). The stage fails only when validation itself cannot run.
    """
    run_id = run_id or runs.current_run_id()
    url = db.role_url("validator", url)
    chosen = select_suites(suites)
    with runs.record_stage(run_id, "validate", url) as figures:
        started = time.monotonic()
        present = existing_tables(url, chosen)
        found: list[Verdict] = [missing_table(s) for s in chosen if s.name not in present]
        identifiers = []
        with warehouse_variable(url):
            context = open_context()
            from great_expectations.core.run_identifier import RunIdentifier

            gx_run = RunIdentifier(run_name=run_id, run_time=datetime.now(UTC))
            for suite in chosen:
                if suite.name not in present:
                    continue
                result = context.checkpoints.get(suite.name).run(run_id=gx_run)
                for identifier, suite_result in result.run_results.items():
                    found.extend(verdicts(suite, suite_result))
                    identifiers.append(identifier)
            docs = None
            if build_docs and identifiers:
                from great_expectations.data_context.types.resource_identifiers import (
                    ExpectationSuiteIdentifier,
                )

                # the suites' own pages too, so the index lists suites beside their results
                suite_pages = [ExpectationSuiteIdentifier(name=s.name) for s in chosen]
                context.build_data_docs(resource_identifiers=[*identifiers, *suite_pages])
                data_docs.localize(data_docs_dir())
                docs = data_docs_dir() / "index.html"
        write_verdicts(url, run_id, [s.name for s in chosen], found)
        figures["build_id"] = record_validation(run_id, url)
        failed = [v for v in found if not v.success]
        figures.update(
            {
                "suites": len(chosen),
                "expectations": len(found),
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
    try:
        failures = blocked_entities(run_id, db.role_url("validator", url)).get(entity, [])
    except NotValidated as exc:
        failures = [str(exc)]
    return GateDecision(run_id, entity, tuple(failures))


def gate(run_id: str, entity: str, url: str | None = None) -> None:
    """Return when reverse ETL may write `entity` for this run; otherwise raise EntityBlocked
    with the reasons."""
    decision = gate_decision(run_id, entity, url)
    if decision.skip:
        raise EntityBlocked(decision.message)
