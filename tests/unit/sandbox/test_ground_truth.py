"""The ground truth is exactly what a reconciler finds in the served data, no more, no less."""

from __future__ import annotations

import json
from collections import Counter

from tieout_sandbox import datadir

from . import reference_recon


def load_truth(directory):
    return json.loads(datadir.ground_truth_path(directory).read_text())


def test_ground_truth_matches_served_data(company, company_records):
    truth = load_truth(company.directory)
    records = company_records

    found = reference_recon.reconcile(records)
    expected = reference_recon.truth_findings(truth)
    assert found - expected == set(), "served data shows divergence the ground truth does not list"
    assert expected - found == set(), "ground truth lists divergence the served data does not show"
    assert len(expected) == len(truth["divergences"]), "two truth items describe the same finding"
    assert reference_recon.balance_breaks(records) == reference_recon.truth_breaks(truth)

    kinds = Counter(item["kind"] for item in truth["divergences"])
    assert set(kinds) == {"missing_in_system", "extra_in_system", "value_mismatch", "duplicate_key"}
    fields = {
        (i["entity"], i["field"]) for i in truth["divergences"] if i["kind"] == "value_mismatch"
    }
    for field in ("name", "email", "phone", "street", "postcode", "city", "vat_number"):
        assert ("customer", field) in fields
    for field in ("amount", "currency", "status", "customer_id", "due_at"):
        assert ("invoice", field) in fields
    assert {("order", "status"), ("order", "amount"), ("product", "price")} <= fields


def test_entity_counts_are_the_master_records(company, company_records):
    truth = load_truth(company.directory)
    records = company_records
    entities = truth["entities"]
    assert entities["customer"] == len(records["erp.customers"]) == 1000
    assert entities["order"] == len(records["shop.orders"]) == 10_000
    assert entities["invoice"] == len(records["erp.invoices"])
    assert entities["payment"] == len(records["billing.payments"])
    assert entities["product"] == len(records["erp.products"])
    assert entities["order_line"] == sum(len(o["line_items"]) for o in records["shop.orders"])
    assert 9_000 <= entities["invoice"] <= 10_000
    assert 8_500 <= entities["payment"] <= 10_500


def test_divergence_rate_is_a_few_percent(company):
    truth = load_truth(company.directory)
    records = sum(truth["entities"][k] for k in ("customer", "order", "invoice", "product"))
    assert 0.01 <= len(truth["divergences"]) / records <= 0.05


def test_benign_noise_is_not_a_finding(company, company_records):
    truth = load_truth(company.directory)
    benign = truth["benign"]
    assert {item["kind"] for item in benign} == {
        "email_case_whitespace",
        "money_format",
        "timezone",
    }
    findings = reference_recon.reconcile(company_records)
    flagged = {(f[1], f[2], f[3], f[4]) for f in findings}
    for item in benign:
        key = str(item["keys"]["canonical"])
        systems = [item["system"]] if "system" in item else ["erp", "billing"]
        for system in systems:
            assert (item["entity"], system, item["field"], key) not in flagged


def test_truth_items_have_the_documented_shape(company):
    truth = load_truth(company.directory)
    for item in truth["divergences"]:
        assert {
            "kind",
            "entity",
            "system",
            "field",
            "keys",
            "expected",
            "actual",
            "cause",
            "day",
        } <= set(item)
        if item["kind"] == "extra_in_system":
            assert "canonical" not in item["keys"] and item["field"] is None
        else:
            assert item["system"] in item["keys"] or item["kind"] == "missing_in_system"
            assert "canonical" in item["keys"]
        if item["kind"] == "duplicate_key":
            assert len(item["keys"][item["system"]]) == 2
        if item["kind"] == "value_mismatch" and item["field"] == "amount":
            assert item["expected"] != item["actual"]
