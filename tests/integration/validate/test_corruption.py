"""Corrupt the canonical tables (a null key, a duplicate key, negative amounts, an orphan invoice,
a bad currency) and one raw record: exactly the expectations that guard them fail, with their
severities, and only the entities they concern are blocked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowSkipException
from click.testing import CliRunner

from tieout import orchestration
from tieout.validate import EntityBlocked, NotValidated, blocked_entities, gate, gate_decision
from tieout.validate.cli import validate as validate_cmd
from tieout.validate.run import validate

RUN = "validate__corrupt"

EXPECTED = {
    ("canonical.payments", "payment_id not null", "critical", "payment"),
    ("canonical.payments", "amount not negative", "critical", "payment"),
    ("canonical.customers", "customer_id unique", "critical", "customer"),
    ("canonical.invoices", "customer_id references canonical.customers", "critical", "invoice"),
    ("canonical.invoices", "currency ISO 4217", "critical", "invoice"),
    ("canonical.customers", "country ISO 3166 alpha-2", "warning", "customer"),
    ("canonical.customers", "country in crm vocabulary", "warning", "customer"),
    ("canonical.invoices", "due_at not before issued_at", "warning", "invoice"),
    ("raw.erp__invoices", "total_amount present as money", "critical", "invoice"),
    ("raw.erp__invoices", "modified_at never goes backwards", "critical", "invoice"),
}

CORRUPTIONS = [
    # a null key and a negative amount on two payments (nothing references payments)
    """update canonical.payments set payment_id = null
       where payment_id = (select min(payment_id) from canonical.payments)""",
    """update canonical.payments set amount = -amount
       where payment_id = (select max(payment_id) from canonical.payments)""",
    # a duplicate key: a customer no invoice or order points at takes another customer's key
    """update canonical.customers
       set customer_id = (select min(customer_id) from canonical.customers)
       where customer_id = (
           select max(c.customer_id) from canonical.customers as c
           where not exists (
                   select 1 from canonical.invoices as i where i.customer_id = c.customer_id)
             and not exists (
                   select 1 from canonical.orders as o where o.customer_id = c.customer_id)
             and c.customer_id > (select min(customer_id) from canonical.customers))""",
    """update canonical.customers set country = 'deu'
       where customer_id = (select max(customer_id) from canonical.customers)""",
    # three invoices: an orphan, a bad currency, due before issued (a warning only)
    """update canonical.invoices set customer_id = 'no-such-customer'
       where invoice_id = (select invoice_id from canonical.invoices order by invoice_id
                           limit 1)""",
    """update canonical.invoices set currency = 'EURO'
       where invoice_id = (select invoice_id from canonical.invoices order by invoice_id
                           offset 1 limit 1)""",
    """update canonical.invoices set due_at = issued_at - 1
       where invoice_id = (select invoice_id from canonical.invoices order by invoice_id
                           offset 2 limit 1)""",
    # raw: the ERP serves a newer version of an invoice without its amount and with an older cursor
    """insert into raw.erp__invoices (_pk, _record, _record_hash, _extracted_at, _run_id)
       select _pk, (_record - 'total_amount') || '{"modified_at": "2000-01-01 00:00:00"}',
              'corrupt', now(), 'corrupt'
       from raw.erp__invoices where _pk = (select min(_pk) from raw.erp__invoices) limit 1""",
]


@pytest.fixture(scope="module")
def corrupted(
    chain_url: str, tmp_path_factory: pytest.TempPathFactory, restore: Callable[[str], None]
) -> Iterator[tuple[dict[str, Any], Any]]:
    with pytest.MonkeyPatch.context() as mp:
        state = tmp_path_factory.mktemp("state")
        mp.setenv("TIEOUT_STATE_DIR", str(state))
        try:
            with psycopg.connect(chain_url, autocommit=True) as conn:
                # no earlier validation to compare with: the change-rate checks of written
                # fields have no baseline here (test_change_rate.py covers them)
                conn.execute("delete from ops.validations")
                for sql in CORRUPTIONS:
                    assert conn.execute(sql).rowcount == 1, sql
            figures = validate(RUN, ["canonical", "raw.erp__invoices"], url=chain_url)
            cli = CliRunner().invoke(
                validate_cmd,
                ["--suite", "canonical.payments", "--run-id", RUN + "_cli", "--no-docs"],
                env={"TIEOUT_DATABASE_URL": chain_url, "TIEOUT_STATE_DIR": str(state)},
            )
            yield figures, cli
        finally:
            restore(chain_url)


def failures(url: str, run_id: str) -> dict[tuple[str, str, str, str], list[Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select suite, expectation, severity, entity, failing_keys
               from ops.validation_results where run_id = %s and not success""",
            (run_id,),
        ).fetchall()
    return {tuple(r[:4]): r[4] for r in rows}  # type: ignore[misc]


def test_exactly_the_guarding_expectations_fail(corrupted: Any, chain_url: str) -> None:
    figures, _ = corrupted
    assert set(failures(chain_url, RUN)) == EXPECTED
    assert figures["failed_critical"] == 7 and figures["failed_warning"] == 3


def test_failing_keys_are_sampled(corrupted: Any, chain_url: str) -> None:
    found = failures(chain_url, RUN)
    with psycopg.connect(chain_url) as conn:
        duplicated = conn.execute(
            "select customer_id from canonical.customers group by 1 having count(*) > 1"
        ).fetchone()
        orphan = conn.execute(
            "select invoice_id from canonical.invoices where customer_id = 'no-such-customer'"
        ).fetchone()
    assert duplicated and orphan
    assert found[("canonical.customers", "customer_id unique", "critical", "customer")] == [
        duplicated[0],
        duplicated[0],
    ]
    orphan_key = ("canonical.invoices", "customer_id references canonical.customers")
    assert found[(*orphan_key, "critical", "invoice")] == [orphan[0]]
    raw_key = ("raw.erp__invoices", "total_amount present as money", "critical", "invoice")
    assert len(found[raw_key]) == 1


def test_only_the_concerned_entities_are_blocked(corrupted: Any, chain_url: str) -> None:
    figures, _ = corrupted
    blocked = blocked_entities(RUN, chain_url)
    assert blocked == figures["blocked"]
    assert blocked == {
        "customer": ["canonical.customers: customer_id unique"],
        "invoice": [
            "canonical.invoices: currency ISO 4217",
            "canonical.invoices: customer_id references canonical.customers",
            "raw.erp__invoices: modified_at never goes backwards",
            "raw.erp__invoices: total_amount present as money",
        ],
        "payment": [
            "canonical.payments: amount not negative",
            "canonical.payments: payment_id not null",
        ],
    }
    gate(RUN, "order", chain_url)
    gate(RUN, "product", chain_url)
    with pytest.raises(EntityBlocked, match="invoice is blocked.*currency ISO 4217"):
        gate(RUN, "invoice", chain_url)
    assert gate_decision(RUN, "invoice", chain_url).skip
    assert not gate_decision(RUN, "order", chain_url).skip
    orchestration.gate(RUN, "order", chain_url)
    with pytest.raises(AirflowSkipException, match="invoice is blocked.*currency ISO 4217"):
        orchestration.gate(RUN, "invoice", chain_url)
    assert figures["warnings"] == [
        "canonical.customers: country ISO 3166 alpha-2",
        "canonical.customers: country in crm vocabulary",
        "canonical.invoices: due_at not before issued_at",
    ]


def test_an_unvalidated_run_blocks_everything(chain_url: str) -> None:
    with pytest.raises(NotValidated):
        blocked_entities("validate__never_ran", chain_url)
    with pytest.raises(EntityBlocked, match="no validation results"):
        gate("validate__never_ran", "customer", chain_url)
    with pytest.raises(AirflowSkipException, match="no validation results"):
        orchestration.gate("validate__never_ran", "customer", chain_url)


def test_cli_exits_non_zero_on_a_critical_failure(corrupted: Any) -> None:
    _, cli = corrupted
    assert cli.exit_code == 1, cli.output
    assert "BLOCKED payment" in cli.output
    assert "payment_id not null" in cli.output


def test_the_data_docs_show_the_failures(corrupted: Any) -> None:
    figures, _ = corrupted
    index = Path(figures["data_docs"])
    assert index.exists()
    pages = list(index.parent.glob("validations/canonical/invoices/**/*.html"))
    assert pages
    assert "currency ISO 4217" in pages[0].read_text() or "EURO" in pages[0].read_text()
