"""Every reconciliation case folder yields exactly its expected findings, no more, no less."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tieout.reconcile.run import reconcile

from .conftest import CASES, NO_ALERTS, open_findings

CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "case.yml").exists())


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_yields_expected_findings(name, load_case, conn, warehouse_url):
    case, relations = load_case(name)
    run_id = f"case-{name}"
    figures = reconcile(
        run_id,
        url=warehouse_url,
        specs={case.name: case.entity},
        relations=relations,
        alerts=NO_ALERTS,
        with_balances=False,
    )
    assert figures["skipped"] == {}
    found = open_findings(conn, case.name)
    identity = ("kind", "system", "field", "ref")
    got = {tuple(f[k] for k in identity) for f in found}
    want = {tuple(row[k] for k in identity) for row in case.expected()}
    assert got - want == set(), "findings the case does not expect"
    assert want - got == set(), "expected findings reconcile missed"
    assert len(found) == len(got), "one difference reported twice"

    by_identity = {tuple(f[k] for k in identity): f for f in found}
    for row in case.expected():
        finding = by_identity[tuple(row[k] for k in identity)]
        for column in ("canonical_value", "system_value"):
            if row.get(column):
                assert finding[column] == row[column], (row, column)
        if row.get("money_impact"):
            assert finding["money_impact"] == Decimal(row["money_impact"]), row
        if row.get("currency"):
            assert finding["currency"] == row["currency"], row
