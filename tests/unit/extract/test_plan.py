"""Task mapping and pools come from config alone."""

from __future__ import annotations

import pytest

from tieout.extract import plan


def test_every_stream_is_planned() -> None:
    pairs = plan.streams()
    assert ("crm", "contacts") in pairs and ("shop", "orders") in pairs
    assert len(pairs) == len(set(pairs)) == 12


def test_narrowing() -> None:
    assert plan.streams("erp", "invoices") == [("erp", "invoices")]
    assert plan.streams(stream="customers") == [
        ("billing", "customers"),
        ("erp", "customers"),
        ("shop", "customers"),
    ]
    with pytest.raises(KeyError, match="no source named 'sap'"):
        plan.streams("sap")


def test_pools_follow_max_concurrency() -> None:
    assert plan.pools() == {
        "source_billing": 2,
        "source_crm": 2,
        "source_erp": 2,
        "source_shop": 2,
    }
