"""Reverse ETL plans nothing that depends on a source that failed to extract this run: no write
to it, none carrying a value whose source of truth it is, none correcting a stale finding."""

from __future__ import annotations

from typing import Any

from tieout.config import load_config
from tieout.reverse_etl.plan import Write
from tieout.reverse_etl.stale import drop_stale_writes, stale_targets

FAILED = {
    "crm": [
        {
            "source": "crm",
            "stream": "contacts",
            "error": "token request answered HTTP 500",
            "failing_since_run_id": "night-2",
        }
    ]
}


class StaleFindings:
    """Answers the one query drop_stale_writes makes: which of these findings are stale."""

    def __init__(self, stale: set[int]) -> None:
        self.stale = stale

    def execute(self, query: str, params: Any) -> StaleFindings:
        assert "stale_since is not null" in query
        self.found = [(i,) for i in params[0] if i in self.stale]
        return self

    def fetchall(self) -> list[tuple[int]]:
        return self.found


def write(system: str, entity: str, values: dict[str, str], finding: int) -> Write:
    return Write(
        system=system,
        entity=entity,
        record_key=str(finding),
        entity_ref=None,
        finding_ids=[finding],
        canonical_values=values,
        target_values=values,
        method="PUT",
        path="/x",
        body="{}",
        idempotency_key=f"key-{finding}",
    )


def test_writes_to_from_or_about_a_failed_source_are_not_planned() -> None:
    config = load_config()
    fields = config.entities["customer"].fields
    assert fields["email"].source_of_truth == "crm" and fields["name"].source_of_truth == "erp"
    to_crm = write("crm", "customer", {"name": "A"}, 1)
    crm_value = write("billing", "customer", {"email": "a@example.com"}, 2)
    stale_finding = write("shop", "customer", {"name": "B"}, 3)
    fresh = write("shop", "customer", {"name": "C"}, 4)
    kept, dropped = drop_stale_writes(
        StaleFindings({3}),  # type: ignore[arg-type]
        config,
        [to_crm, crm_value, stale_finding, fresh],
        FAILED,
    )
    assert kept == [fresh]
    assert dropped == {
        "crm.customer: crm (the target) failed to extract": 1,
        "billing.customer: its value comes from crm, which failed to extract": 1,
        "shop.customer: it corrects a finding marked stale": 1,
    }


def test_nothing_is_dropped_when_every_source_loaded() -> None:
    writes = [write("crm", "customer", {"name": "A"}, 1)]
    kept, dropped = drop_stale_writes(None, load_config(), writes, {})  # type: ignore[arg-type]
    assert kept == writes and dropped == {}


def test_a_failed_systems_targets_are_skipped_whole_with_the_error() -> None:
    targets = load_config().reverse_etl.targets
    skipped = stale_targets(targets, FAILED)
    assert skipped and {system for system, _ in skipped} == {"crm"}
    for why in skipped.values():
        assert "crm failed to extract" in why and "HTTP 500" in why and "night-2" in why
