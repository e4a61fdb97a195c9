"""Each health rule alone: which state it gives, at which boundary, and the words it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tieout.config import ConfigError, HealthRules, Source, Target, Threshold, load_alerts
from tieout.health import rules
from tieout.paths import config_dir

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RULES = HealthRules(
    error_rate=Threshold(warn=0.05, error=0.25),
    quarantine_share=Threshold(warn=0.01, error=0.1),
)


def source(freshness: dict[str, Any] | None = None, **streams: dict[str, Any]) -> Source:
    return Source.model_validate(
        {
            "name": "crm",
            "base_url": "http://crm.invalid",
            "connection_id": "tieout_crm",
            "auth": {"kind": "none"},
            "freshness": freshness,
            "streams": [
                {"name": name, "path": f"/{name}", "primary_key": ["id"], **extra}
                for name, extra in (streams or {"contacts": {}, "companies": {}}).items()
            ],
        }
    )


def row(**values: Any) -> dict[str, Any]:
    base = {
        "status": "success",
        "requests": 100,
        "errors_4xx": 0,
        "errors_5xx": 0,
        "errors_timeout": 0,
        "errors_connection": 0,
        "http_429": 0,
        "quarantine_share": 0.0,
        "newest_cursor": NOW - timedelta(hours=1),
        "circuit_open": False,
        "error": None,
    }
    return base | values


def judge(src: Source, **rows: dict[str, Any]) -> rules.Judgement:
    return rules.judge_source(src, rows, RULES, NOW)


def test_all_clear() -> None:
    j = judge(source(), contacts=row(), companies=row())
    assert (j.state, j.rule, j.fired) == ("healthy", "all_clear", [])
    assert j.detail == "crm: 2 streams within limits"


@pytest.mark.parametrize(
    ("errors", "state"),
    [
        ({"errors_5xx": 4}, "healthy"),
        ({"errors_5xx": 5}, "degraded"),
        ({"errors_timeout": 10, "errors_connection": 14}, "degraded"),
        ({"errors_4xx": 5, "errors_5xx": 20}, "failing"),
        ({"http_429": 90}, "healthy"),  # throttled, not failed
    ],
)
def test_error_rate_boundaries(errors: dict[str, int], state: str) -> None:
    j = judge(source(), contacts=row(**errors), companies=row())
    assert j.state == state
    if state != "healthy":
        assert j.rule == "error_rate"
        rate = sum(errors.values()) / 100
        limit = 0.25 if state == "failing" else 0.05
        assert j.detail == (f"crm.contacts: {rate:.1%} of 100 requests failed (limit {limit:.1%})")


def test_circuit_breaker_names_the_state_before_other_rules() -> None:
    j = judge(
        source(),
        contacts=row(errors_5xx=40, circuit_open=True, status="failed", error="stopped after 10"),
        companies=row(quarantine_share=0.5),
    )
    assert (j.state, j.rule) == ("failing", "circuit_breaker")
    assert j.detail == "crm.contacts: the circuit breaker stopped the last run (stopped after 10)"
    assert [f.rule for f in j.fired] == [
        "circuit_breaker",
        "error_rate",
        "quarantine_share",
    ]


def test_failed_run_is_failing() -> None:
    j = judge(source(), contacts=row(status="failed", error="HTTP 404"), companies=row())
    assert (j.state, j.rule) == ("failing", "run_failed")
    assert "HTTP 404" in j.detail


@pytest.mark.parametrize(
    ("share", "state"), [(0.009, "healthy"), (0.01, "degraded"), (0.1, "failing")]
)
def test_quarantine_share(share: float, state: str) -> None:
    j = judge(source(), contacts=row(), companies=row(quarantine_share=share))
    assert j.state == state
    if state != "healthy":
        assert j.rule == "quarantine_share"


@pytest.mark.parametrize(("age_h", "state"), [(25, "healthy"), (27, "degraded"), (49, "failing")])
def test_source_freshness_uses_its_newest_stream(age_h: int, state: str) -> None:
    src = source({"warn_after": "26h", "error_after": "48h"})
    j = judge(
        src,
        contacts=row(newest_cursor=NOW - timedelta(hours=age_h)),
        companies=row(newest_cursor=NOW - timedelta(days=30)),  # old, but the source is not
    )
    assert j.state == state
    if state != "healthy":
        assert j.rule == "freshness"
        expected = {27: "27.0h old (limit 26h)", 49: "2.0d old (limit 48h)"}[age_h]
        assert j.detail == f"crm: newest record is {expected}"


def test_stream_freshness_overrides_for_that_stream() -> None:
    src = source(
        {"warn_after": "26h"},
        contacts={},
        companies={"freshness": {"error_after": "1h"}},
    )
    j = judge(
        src,
        contacts=row(newest_cursor=NOW - timedelta(minutes=10)),
        companies=row(newest_cursor=NOW - timedelta(hours=2)),
    )
    assert (j.state, j.rule) == ("failing", "freshness")
    assert j.detail == "crm.companies: newest record is 2.0h old (limit 1h)"


def test_a_stream_never_extracted_is_degraded() -> None:
    j = judge(source(), contacts=row())
    assert (j.state, j.rule) == ("degraded", "no_runs")
    assert j.detail == "crm: never extracted: companies"


def test_targets() -> None:
    target = Target(
        system="erp", entity="customer", fields=["email"], method="PUT", path="/c/{key}"
    )
    never = rules.judge_target(target, None, RULES)
    assert (never.state, never.rule) == ("healthy", "no_runs")
    ok = rules.judge_target(target, row(quarantine_share=None), RULES)
    assert (ok.name, ok.state) == ("erp.customer", "healthy")
    bad = rules.judge_target(target, row(quarantine_share=0.2), RULES)
    assert (bad.kind, bad.state, bad.rule) == ("target", "failing", "quarantine_share")


def test_divergence() -> None:
    assert rules.judge_divergence("invoice", 0, None, 7).state == "healthy"
    assert rules.judge_divergence("invoice", 3, 30.0, None).state == "healthy"
    j = rules.judge_divergence("invoice", 3, 9.4, 7)
    assert (j.state, j.rule) == ("degraded", "prolonged_divergence")
    assert j.detail == "invoice: 3 findings open longer than 7 days (oldest 9 days)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "health: {error_rate: {warn: 0.3, error: 0.1}}\n",
            "health.error_rate: error (0.1) must be at least warn (0.3)",
        ),
        (
            "health: {quarantine_share: {warn: 2, error: 1}}\n",
            "health.quarantine_share.warn: Input should be less than or equal to 1",
        ),
        (
            "divergence_days: {invoice: 0}\n",
            "divergence_days: invoice: expected a number of days >= 1, got 0",
        ),
        (
            "health: {error_rates: {warn: 0.1, error: 0.2}}\n",
            "health.error_rates: unknown key (check the spelling)",
        ),
    ],
)
def test_invalid_health_rules(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "alerts.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_alerts(tmp_path)
    assert caught.value.problems == [f"{tmp_path / 'alerts.yml'}: {problem}"]


def test_shipped_alerts_have_health_rules() -> None:
    alerts = load_alerts()
    assert alerts.health.error_rate.warn < alerts.health.error_rate.error
    shipped = yaml.safe_load((config_dir() / "alerts.yml").read_text())["divergence_days"]
    assert "invoice" in shipped and "customer" not in shipped
    assert alerts.divergence_limit("invoice") == shipped["invoice"]
    assert alerts.divergence_limit("customer") == shipped["default"]
