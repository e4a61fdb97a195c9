"""What-to-do lines say, in plain words, what happens or what a person must do."""

from __future__ import annotations

import pytest

from tieout.report import actions


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (
            {"system": "billing", "entity": "invoice", "kind": "missing_in_system",
             "state": "needs_person", "count": 32},
            "Create 32 invoices in billing",
        ),
        (
            {"system": "erp", "entity": "order", "kind": "duplicate_key",
             "state": "needs_person", "count": 35},
            "Merge 35 duplicate ERP orders",
        ),
        (
            {"system": "erp", "entity": "order", "kind": "duplicate_key",
             "state": "needs_person", "count": 1},
            "Merge 1 duplicate ERP order",
        ),
        (
            {"system": "shop", "entity": "customer", "kind": "extra_in_system",
             "state": "needs_person", "count": 3},
            "Review 3 customers that only webshop has: add them to ERP or remove them",
        ),
        (
            {"system": "crm", "entity": "customer", "kind": "value_mismatch", "field": "city",
             "state": "fixed", "count": 2},
            "Corrected city of 2 customers in CRM; read back and verified",
        ),
        (
            {"system": "billing", "entity": "invoice", "kind": "value_mismatch",
             "field": "amount", "state": "held", "count": 4,
             "reason": "safety brake: 31% would change"},
            "Correction of amount of 4 invoices in billing held: safety brake: 31% would change",
        ),
        (
            {"system": "erp", "entity": "invoice", "kind": "value_mismatch", "field": "status",
             "state": "dead", "count": 1, "reason": "HTTP 404"},
            "Correction of status of 1 invoice in ERP gave up: HTTP 404 "
            "(tieout reverse-etl replay tries again)",
        ),
        (
            {"system": "erp", "entity": "order", "kind": "order_without_invoice",
             "state": "needs_person", "count": 37},
            "Raise an invoice in ERP for 37 orders",
        ),
    ],
)  # fmt: skip
def test_sentences(group, expected):
    assert actions.sentence(group, {"customer": "erp", "order": "shop"}) == expected


def test_kinds_have_plain_names_and_unknown_ones_stay_readable():
    assert actions.kind_name("missing_in_system") == "missing from the system"
    assert actions.kind_name("paid_amount_mismatch") == "marked paid, payments differ"
    assert actions.kind_name("something_new") == "something new"


def test_values_in_words_for_kinds_without_a_value():
    assert actions.shown_values("missing_in_system", "present", "absent") == ("exists", "missing")
    assert actions.shown_values("duplicate_key", "1", "2") == ("1 record", "2 records")
    assert actions.shown_values("value_mismatch", "Berlin", "Bonn") == ("Berlin", "Bonn")


def test_receivables_are_not_breaks():
    assert not set(actions.RECEIVABLES) & set(actions.BREAKS)
