"""Health judged from ops.integration_metrics and recon.findings: `tieout health --json` names
every source and target, states are kept, and a change of state (only a change) is alerted."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tieout.config import load_config
from tieout.health import check


@pytest.fixture
def warehouse(new_warehouse: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with new_warehouse("tieout_health") as url:
        monkeypatch.setenv("TIEOUT_DATABASE_URL", url)
        yield url


def health_json(url: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "health", "--json"],
        env={**os.environ, "TIEOUT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_health_json_names_every_source_and_target(warehouse: str, measure: Any) -> None:
    config = load_config()
    sources = set(config.sources)
    targets = {f"{t.system}.{t.entity}" for t in config.reverse_etl.targets}

    before = health_json(warehouse)["integrations"]
    assert {i["name"] for i in before if i["kind"] == "source"} == sources
    assert {i["name"] for i in before if i["kind"] == "target"} == targets
    assert {i["rule"] for i in before if i["kind"] in ("source", "target")} == {"no_runs"}

    with psycopg.connect(warehouse, autocommit=True) as conn:
        measure(conn, "run-1", **{"erp.invoices": {"errors_5xx": 12, "requests": 100}})
    after = {(i["kind"], i["name"]): i for i in health_json(warehouse)["integrations"]}
    assert after["source", "erp"]["state"] == "degraded"
    assert after["source", "erp"]["rule"] == "error_rate"
    assert after["source", "erp"]["detail"] == (
        "erp.invoices: 12.0% of 100 requests failed (limit 5.0%)"
    )
    text = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "health"],
        env={**os.environ, "TIEOUT_DATABASE_URL": warehouse},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(text) == len(after)
    erp_line = next(line for line in text if line.split()[:2] == ["source", "erp"])
    assert erp_line.split()[2:4] == ["degraded", "error_rate"]
    others = {name for (kind, name), i in after.items() if i["state"] == "healthy"}
    assert others == (sources - {"erp"}) | targets | {
        name for (kind, name) in after if kind == "divergence"
    }


def test_alerts_fire_on_a_change_of_state_only(
    warehouse: str, measure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tieout.alerts")
    with psycopg.connect(warehouse, autocommit=True) as conn:
        measure(conn, "run-1")
    first = check.check("run-1")
    assert first["changed"] == []  # all healthy at the first check: nothing to say
    assert set(first["states"].values()) == {"healthy"}

    with psycopg.connect(warehouse, autocommit=True) as conn:
        measure(
            conn,
            "run-2",
            **{"crm.contacts": {"circuit_open": True, "error": "stopped after 10 failures"}},
        )
    second = check.check("run-2")
    assert second["changed"] == [
        "source crm is failing (was healthy): circuit_breaker: crm.contacts: the circuit "
        "breaker stopped the last run (stopped after 10 failures)"
    ]
    assert second["changed"][0] in caplog.text

    again = check.check("run-2b")
    assert again["changed"] == [], "an unchanged state is not alerted again"

    with psycopg.connect(warehouse, autocommit=True) as conn:
        measure(conn, "run-3")
        since = conn.execute(
            "select state, rule, run_id from ops.integration_health "
            "where kind = 'source' and name = 'crm'"
        ).fetchone()
        assert since == ("failing", "circuit_breaker", "run-2b")
    third = check.check("run-3")
    assert third["changed"] == [
        "source crm is healthy (was failing): all_clear: crm: 2 streams within limits"
    ]


def test_prolonged_divergence_is_alerted_per_entity(warehouse: str, measure: Any) -> None:
    with psycopg.connect(warehouse, autocommit=True) as conn:
        measure(conn, "run-1")
        check.check("run-1")
        for days, entity in ((9, "invoice"), (8, "invoice"), (9, "customer"), (2, "payment")):
            conn.execute(
                """insert into recon.findings (entity, system, kind, finding_key,
                       first_seen_run_id, last_seen_run_id, first_seen_at)
                   values (%s, 'erp', 'value_mismatch', %s, 'old', 'old',
                           now() - make_interval(days => %s))""",
                (entity, json.dumps({"id": f"{entity}-{days}"}), days),
            )
    outcome = check.check("run-2")
    # invoice's limit is 7 days, customer's the default 14, payment's 7 (its finding is 2 days)
    assert outcome["changed"] == [
        "divergence invoice is degraded (was healthy): prolonged_divergence: invoice: 2 findings "
        "open longer than 7 days (oldest 9 days)"
    ]
    assert outcome["states"]["divergence:customer"] == "healthy"
