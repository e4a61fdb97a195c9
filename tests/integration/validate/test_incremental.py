"""Validation in proportion to change: after a validation of whole tables, a night with nothing new
reads no rows per row check; a bad row that arrives on such a night is caught on the changed rows
and its entity's gate blocks; a duplicate made by a changed row is caught on the changed rows
against the whole table; an expectation that failed keeps reading the whole table until it
passes; whole tables on the nights of validation.yml and on demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from tieout import orchestration
from tieout.validate import gate_decision
from tieout.validate.run import validate

SUNDAY, MONDAY = date(2026, 12, 6), date(2026, 12, 7)


def results(url: str, run_id: str) -> dict[tuple[str, str], tuple[bool, str, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select suite, expectation, success, scope, failing_keys
               from ops.validation_results where run_id = %s""",
            (run_id,),
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def test_changed_rows_only_and_a_bad_row_is_caught(
    chain_url: str, restore: Callable[[str], None]
) -> None:
    full = validate("inc__full", url=chain_url, build_docs=False, full=True, day=SUNDAY)
    assert full["mode"] == "full"
    # what other tests of this database left failing (change rates against their runs)
    already = set(full["blocked"])
    assert {s["mode"] for s in full["scopes"].values()} == {"full"}
    assert full["on_changed_rows"] == 0

    quiet = validate("inc__quiet", url=chain_url, build_docs=False, day=SUNDAY)
    assert quiet["mode"] == "changes" and quiet["full_reason"] is None
    assert {s["changed_rows"] for s in quiet["scopes"].values()} == {0}
    # every expectation still has its verdict; the row checks read no row
    assert quiet["expectations"] == full["expectations"]
    assert quiet["failed_critical"] == full["failed_critical"]
    found = results(chain_url, "inc__quiet")
    assert found[("canonical.payments", "amount not negative")][1] == "changes"
    assert found[("canonical.customers", "row count within bounds of raw.erp__customers")][1] == (
        "table"
    )
    # uniqueness held on the whole tables, so tonight it reads the changed rows against them
    assert found[("canonical.customers", "customer_id unique")][1] == "changes"
    assert found[("canonical.order_lines", "order_id, line_number unique")][1] == "changes"
    assert found[("raw.erp__invoices", "total_amount present as money")][1] == "changes"

    try:
        with psycopg.connect(chain_url, autocommit=True) as conn:
            bad = conn.execute(
                """update canonical.payments set amount = -amount
                   where payment_id = (select max(payment_id) from canonical.payments)
                   returning payment_id"""
            ).fetchone()
            assert bad
            # the bad payment takes another payment's billing id, and an order line another
            # line's order and number: duplicates that the changed rows hold
            holder = conn.execute(
                """select payment_id, billing_id from canonical.payments
                   where payment_id <> %s and billing_id is not null
                   order by payment_id limit 1""",
                (bad[0],),
            ).fetchone()
            assert holder
            conn.execute(
                "update canonical.payments set billing_id = %s where payment_id = %s",
                (holder[1], bad[0]),
            )
            line = conn.execute(
                """update canonical.order_lines as l
                   set order_id = other.order_id, line_number = other.line_number
                   from canonical.order_lines as other
                   where l.order_line_id = (select max(order_line_id) from canonical.order_lines)
                     and other.order_line_id = (
                         select min(order_line_id) from canonical.order_lines)
                   returning other.order_line_id, l.order_line_id"""
            ).fetchone()
            assert line
            conn.execute(
                """insert into raw.erp__invoices (_pk, _record, _record_hash, _extracted_at,
                       _run_id)
                   select _pk, _record - 'total_amount', 'corrupt', now(), 'corrupt'
                   from raw.erp__invoices
                   where _pk = (select min(_pk) from raw.erp__invoices) limit 1"""
            )
        night = validate("inc__bad", url=chain_url, build_docs=False, day=SUNDAY)
        assert night["mode"] == "changes"
        assert night["scopes"]["canonical.payments"]["changed_rows"] == 1
        assert night["scopes"]["raw.erp__invoices"]["changed_rows"] >= 2  # the key's versions
        found = results(chain_url, "inc__bad")
        assert found[("canonical.payments", "amount not negative")] == (False, "changes", [bad[0]])
        assert not found[("raw.erp__invoices", "total_amount present as money")][0]
        # as GX reports a duplicate: the key of every row that holds the duplicated value
        assert found[("canonical.payments", "billing_id unique")] == (
            False,
            "changes",
            sorted([holder[0], bad[0]]),
        )
        compound = found[("canonical.order_lines", "order_id, line_number unique")]
        assert compound == (False, "changes", sorted(line))
        assert found[("canonical.payments", "payment_id unique")][:2] == (True, "changes")
        assert set(night["blocked"]) == {"payment", "invoice", "order"} | already
        decision = gate_decision("inc__bad", "payment", chain_url)
        assert decision.skip and "amount not negative" in decision.message
        with pytest.raises(AirflowSkipException):
            orchestration.gate("inc__bad", "payment", chain_url)
        assert not gate_decision("inc__bad", "product", chain_url).skip

        # nothing changed since, yet the failed expectation reads the whole table and fails again
        again = validate("inc__again", url=chain_url, build_docs=False, day=SUNDAY)
        assert again["scopes"]["canonical.payments"]["changed_rows"] == 0
        found = results(chain_url, "inc__again")
        assert found[("canonical.payments", "amount not negative")] == (False, "table", [bad[0]])
        # so does each uniqueness expectation that failed: its duplicates are unchanged rows now
        assert found[("canonical.payments", "billing_id unique")][:2] == (False, "table")
        assert found[("canonical.order_lines", "order_id, line_number unique")][:2] == (
            False,
            "table",
        )
        assert gate_decision("inc__again", "payment", chain_url).skip
    finally:
        restore(chain_url)
    fixed = validate("inc__fixed", url=chain_url, build_docs=False, day=SUNDAY)
    assert fixed["scopes"]["canonical.payments"]["changed_rows"] == 1
    assert fixed["scopes"]["canonical.order_lines"]["changed_rows"] == 1
    found = results(chain_url, "inc__fixed")
    assert found[("canonical.payments", "billing_id unique")][:2] == (True, "table")
    assert "payment" not in fixed["blocked"] or "payment" in already


def test_whole_tables_on_schedule_and_on_demand(chain_url: str) -> None:
    scheduled = validate(
        "inc__monday", ["canonical.products"], url=chain_url, build_docs=False, day=MONDAY
    )
    assert scheduled["mode"] == "full" and "monday" in scheduled["full_reason"]
    asked = validate(
        "inc__asked", ["canonical.products"], url=chain_url, build_docs=False, full=True
    )
    assert asked["mode"] == "full" and asked["on_changed_rows"] == 0
    other_day = validate(
        "inc__tuesday", ["canonical.products"], url=chain_url, build_docs=False, day=SUNDAY
    )
    assert other_day["mode"] == "changes"


def test_a_gate_needs_its_entity_validated_in_the_run(chain_url: str) -> None:
    """Results of other suites in the run do not vouch for an entity whose suites did not run
    (a failed `validate.<entity>` task)."""
    validate("inc__raw_only", ["raw"], url=chain_url, build_docs=False)
    decision = gate_decision("inc__raw_only", "order", chain_url)
    assert decision.skip and "canonical.orders: not validated" in decision.message


def test_the_dags_tasks_one_per_entity_then_the_summary(
    chain_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tieout.validate import NotValidated

    monkeypatch.setenv("TIEOUT_DATABASE_URL", chain_url)
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
    groups = orchestration.validation_groups()
    for entity in groups:
        if entity != "order":
            orchestration.validate_entity("inc__dag", entity)
    with pytest.raises(NotValidated, match="canonical.orders"):
        orchestration.finish_validation("inc__dag")
    assert gate_decision("inc__dag", "order").skip  # its task has not run
    orchestration.validate_entity("inc__dag", "order", full=True)
    figures = orchestration.finish_validation("inc__dag")
    assert figures["suites"] == sum(len(s) for s in groups.values())
    assert figures["build_id"]
    assert figures["data_docs"] and (tmp_path / "state" / "data_docs" / "index.html").exists()
    assert set(figures["entity_s"]) == {f"validate:{entity}" for entity in groups}
    assert not gate_decision("inc__dag", "order").skip
