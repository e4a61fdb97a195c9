"""Who decides on held writes, how a target is named, and that every written field is guarded."""

from __future__ import annotations

import pytest

from tieout.config import load_config
from tieout.reverse_etl import hold
from tieout.validate import suites


def test_decided_by_prefers_the_caller_then_tieout_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEOUT_USER", "alice")
    assert hold.decided_by("airflow:bob") == "airflow:bob"
    assert hold.decided_by() == "alice"
    monkeypatch.delenv("TIEOUT_USER")
    assert hold.decided_by()  # the OS user


@pytest.mark.parametrize(
    ("text", "expected"),
    [("crm", hold.Target("crm", None)), ("crm.customer", hold.Target("crm", "customer"))],
)
def test_parse_target(text: str, expected: hold.Target) -> None:
    assert hold.parse_target(text) == expected


def test_parse_target_refuses_empty() -> None:
    with pytest.raises(ValueError, match="expected a system or system.entity"):
        hold.parse_target(" ")


def test_every_written_field_has_a_change_rate_check() -> None:
    config = load_config()
    built = {s.entity: s for s in suites.build_suites(config) if s.schema == "canonical"}
    for target in config.reverse_etl.targets:
        names = {c.name: c for c in built[target.entity].checks}
        for field in target.fields:
            check = names[f"{field} changed on at most 2% of rows since the last validated build"]
            assert check.severity == "critical"
            assert "ops.validated_rows" in check.kwargs["unexpected_rows_query"]
        for field in target.required:
            assert names[f"{field} not null"].severity == "critical"
    crm = {c.name: c for c in built["customer"].checks}["country in crm vocabulary"]
    assert crm.kwargs["value_set"] == ["AT", "CH", "DE", "FR", "GB", "NL", "US"]
