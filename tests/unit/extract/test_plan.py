"""Task mapping and pools come from config alone."""

from __future__ import annotations

import pytest

from tieout.config import load_config
from tieout.extract import plan


def test_every_stream_is_planned() -> None:
    pairs = plan.streams()
    assert ("crm", "contacts") in pairs and ("shop", "orders") in pairs
    configured = sum(len(source.streams) for source in load_config().sources.values())
    assert len(pairs) == len(set(pairs)) == configured


def test_narrowing() -> None:
    assert plan.streams("erp", "invoices") == [("erp", "invoices")]
    with_customers = [
        (name, "customers")
        for name, source in load_config().sources.items()
        if "customers" in {stream.name for stream in source.streams}
    ]
    assert len(with_customers) > 1, "narrowing by stream alone needs a stream two sources have"
    assert plan.streams(stream="customers") == with_customers
    with pytest.raises(KeyError, match="no source named 'sap'"):
        plan.streams("sap")


def test_pools_follow_max_concurrency() -> None:
    assert plan.pools() == {
        f"source_{name}": source.rate_limit.max_concurrency
        for name, source in load_config().sources.items()
    }
