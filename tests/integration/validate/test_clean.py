"""A clean dbt build passes every expectation, and the run leaves its verdicts, its stage row and
its Data Docs where reverse ETL, `tieout summary` and the drift report look for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tieout.validate import blocked_entities, gate
from tieout.validate.cli import validate as validate_cmd
from tieout.validate.run import suite_files, validate


@pytest.fixture(scope="module")
def clean(chain_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIEOUT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        mp.setenv("TIEOUT_DATABASE_URL", chain_url)
        yield validate("validate__clean", url=chain_url)


def test_clean_build_passes_every_expectation(clean: dict[str, Any], chain_url: str) -> None:
    with psycopg.connect(chain_url) as conn:
        failed = conn.execute(
            """select suite, expectation, observed_value, failing_keys, exception
               from ops.validation_results where run_id = 'validate__clean' and not success"""
        ).fetchall()
    assert failed == []
    assert clean["failed_critical"] == 0 and clean["failed_warning"] == 0
    assert clean["blocked"] == {}
    assert clean["suites"] == len(suite_files())
    assert clean["expectations"] == sum(s.expectations for s in suite_files())


def test_every_verdict_is_recorded(clean: dict[str, Any], chain_url: str) -> None:
    with psycopg.connect(chain_url) as conn:
        rows = conn.execute(
            """select suite, severity, entity, success, failing_keys
               from ops.validation_results where run_id = 'validate__clean'"""
        ).fetchall()
        stage = conn.execute(
            """select status, figures ->> 'expectations' from ops.stage_runs
               where run_id = 'validate__clean' and stage = 'validate'"""
        ).fetchone()
    assert len(rows) == clean["expectations"]
    assert {r[1] for r in rows} == {"critical", "warning"}
    assert all(r[2] for r in rows if r[0].startswith("canonical."))
    assert stage == ("success", str(clean["expectations"]))


def test_data_docs_are_built(clean: dict[str, Any]) -> None:
    index = Path(clean["data_docs"])
    assert index.name == "index.html" and index.exists()
    assert "canonical.invoices" in index.read_text()


def test_nothing_is_blocked_after_a_clean_run(clean: dict[str, Any], chain_url: str) -> None:
    assert blocked_entities("validate__clean", chain_url) == {}
    for entity in ("customer", "product", "order", "invoice", "payment"):
        gate("validate__clean", entity, chain_url)


def test_cli_exits_zero_when_clean(clean: dict[str, Any], chain_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        validate_cmd,
        ["--suite", "canonical.payments", "--run-id", "validate__cli_clean", "--no-docs"],
        env={"TIEOUT_DATABASE_URL": chain_url, "TIEOUT_STATE_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert "1 suites" in result.output and "0 critical" in result.output


def test_a_missing_table_is_a_failure_of_its_entity(chain_url: str, tmp_path: Path) -> None:
    with psycopg.connect(chain_url, autocommit=True) as conn:
        conn.execute("alter table raw.erp__products rename to erp__products_away")
        conn.execute("alter table raw.crm__companies rename to crm__companies_away")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TIEOUT_STATE_DIR", str(tmp_path))
            figures = validate(
                "validate__missing", ["raw.erp__products", "raw.crm__companies"], url=chain_url
            )
    finally:
        with psycopg.connect(chain_url, autocommit=True) as conn:
            conn.execute("alter table raw.erp__products_away rename to erp__products")
            conn.execute("alter table raw.crm__companies_away rename to crm__companies")
    assert figures["expectations"] == 2 and figures["data_docs"] is None
    assert figures["blocked"] == {"product": ["raw.erp__products: table exists"]}
    assert figures["warnings"] == ["raw.crm__companies: table exists"]
