"""A bad canonical value cannot spread: a field corrupted after validation is held (nothing reaches
any sandbox system), a validation older than the build is refused, and a person's approve sends
exactly the held writes once (read back) while discard drops them, each decision audited."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tieout.reverse_etl import hold
from tieout.reverse_etl.cli import reverse_etl as reverse_etl_cmd
from tieout.reverse_etl.gate import GateRefused
from tieout.reverse_etl.run import reverse_etl
from tieout.transform.builds import record_build

from .conftest import Company

SYSTEMS = {"crm": "contacts", "billing": "customers", "shop": "customers"}


def sent_writes(company: Company) -> dict[str, list[dict[str, Any]]]:
    """Every write request each sandbox system received (applied or not)."""
    return {system: company.audit(system) for system in SYSTEMS}


def customers(company: Company) -> list[dict[str, str]]:
    """One canonical customer per position, with its crm, billing and shop record ids, and only
    these rows in canonical.customers (so a share of rows is a share of this list)."""
    ids = {
        system: [
            r["id"]
            for r in company.records(system, table, 200)
            if not r.get("archived") and not r.get("deleted")  # tombstones answer 404
        ]
        for system, table in SYSTEMS.items()
    }
    count = min(len(found) for found in ids.values())
    rows = [
        {"key": f"k{n:03d}", **{system: ids[system][n] for system in SYSTEMS}} for n in range(count)
    ]
    with psycopg.connect(company.url) as conn:
        conn.execute("delete from canonical.customers")
        for row in rows:
            conn.execute(
                """insert into canonical.customers (customer_id, name, email, city, country)
                   values (%s, %s, %s, %s, 'DE')""",
                (
                    row["key"],
                    f"Name {row['key']}",
                    f"{row['key']}@example.org",
                    f"City {row['key']}",
                ),
            )
    return rows


def corrupt(company: Company, rows: list[dict[str, str]], share: float) -> list[dict[str, str]]:
    """`update canonical.customers set city = 'X'` on `share` of the rows, then the findings a
    reconcile would write for them in crm, billing and shop."""
    bad = rows[: max(1, round(share * len(rows)))]
    with psycopg.connect(company.url) as conn:
        conn.execute(
            "update canonical.customers set city = 'X' where customer_id = any(%s)",
            ([row["key"] for row in bad],),
        )
    for row in bad:
        for system in SYSTEMS:
            company.finding("customer", system, "city", row[system], "X", canonical_key=row["key"])
    return bad


@pytest.mark.parametrize("share", [0.01, 0.05, 0.15, 0.5])
def test_corrupted_field_is_held_and_reaches_no_system(company: Company, share: float) -> None:
    rows = customers(company)
    company.validated("v1")
    bad = corrupt(company, rows, share)
    figures = reverse_etl("v1")
    assert figures["held"]["writes"] == 3 * len(bad)
    assert figures["inserted"] == 3 * len(bad) and figures["planned_writes"] == 0
    assert sent_writes(company) == {"crm": [], "billing": [], "shop": []}
    outbox = company.outbox()
    assert {row["state"] for row in outbox} == {"held"} and len(outbox) == 3 * len(bad)
    expected = (
        f"canonical.customers.city changed since validation on {len(bad) / len(rows):.1%} of "
        f"rows ({len(bad)} of {len(rows)})"
    )
    for row in outbox:
        assert row["held_reason"].startswith("validation gate: " + expected), row["held_reason"]
        assert "validation run v1 of build build__" in row["held_reason"]
    with psycopg.connect(company.url) as conn:
        held = hold.held_writes(conn)
    assert {(h["system"], h["entity"], tuple(h["fields"]), h["count"]) for h in held} == {
        (system, "customer", ("city",), len(bad)) for system in SYSTEMS
    }
    # a rerun holds nothing new and still sends nothing
    again = reverse_etl("v1")
    assert again["inserted"] == 0 and sent_writes(company) == {"crm": [], "billing": [], "shop": []}


def test_validation_older_than_the_build_is_refused(company: Company) -> None:
    rows = customers(company)
    for row in rows[:3]:
        company.finding(
            "customer", "crm", "city", row["crm"], f"City {row['key']}", canonical_key=row["key"]
        )
    company.validated("v1")
    newer = record_build("nightly-2", "airflow", None, company.url)
    with pytest.raises(GateRefused) as refused:
        reverse_etl("v1")
    message = str(refused.value)
    assert f"canonical is build {newer} (run nightly-2" in message
    assert "the validation found (run v1," in message and "checked build build__" in message
    assert company.outbox() == [] and sent_writes(company) == {"crm": [], "billing": [], "shop": []}

    result = CliRunner().invoke(reverse_etl_cmd, ["run", "--run-id", "v1"])
    assert result.exit_code == 3 and newer in result.output
    plan = CliRunner().invoke(reverse_etl_cmd, ["plan"])  # no validation of the newest build
    assert plan.exit_code == 3 and "no validation checked the newest canonical build" in plan.output
    assert company.outbox() == [] and sent_writes(company) == {"crm": [], "billing": [], "shop": []}


def test_plan_without_run_id_uses_the_latest_validated_build(company: Company) -> None:
    rows = customers(company)
    for row in rows[:3]:
        company.finding(
            "customer", "crm", "city", row["crm"], f"City {row['key']}", canonical_key=row["key"]
        )
    company.validated("v1")
    company.validated("v2")
    result = CliRunner().invoke(reverse_etl_cmd, ["plan", "--json"], env={"TIEOUT_RUN_ID": ""})
    assert result.exit_code == 0, result.output
    assert '"run_id": "v2"' in result.output and '"planned_writes": 3' in result.output
    assert company.outbox() == []


def test_approve_sends_held_once_and_discard_drops_them(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = customers(company)
    company.validated("v1")
    bad = corrupt(company, rows, 0.15)
    reverse_etl("v1")
    monkeypatch.setenv("TIEOUT_USER", "alice")
    runner = CliRunner()

    status = runner.invoke(reverse_etl_cmd, ["status"])
    assert status.exit_code == 0, status.output
    assert f"crm.customer [city] {len(bad)} held since" in status.output

    approved = runner.invoke(
        reverse_etl_cmd,
        [
            "approve",
            "--target",
            "crm.customer",
            "--field",
            "city",
            "--reason",
            "city rename",
            "--json",
        ],
    )
    assert approved.exit_code == 0, approved.output
    states = {(row["system"], row["state"]) for row in company.outbox()}
    assert states == {("crm", "verified"), ("billing", "held"), ("shop", "held")}
    applied = company.applied("crm")
    assert len(applied) == len(bad) and set(applied.values()) == {1}
    for row in bad:
        assert company.record("crm", "contacts", row["crm"])["properties"]["city"] == "X"
    assert sent_writes(company)["billing"] == [] and sent_writes(company)["shop"] == []

    before = len(company.audit("crm"))
    second = runner.invoke(
        reverse_etl_cmd, ["approve", "--target", "crm.customer", "--reason", "again", "--json"]
    )
    assert second.exit_code == 0 and '"released": 0' in second.output
    assert len(company.audit("crm")) == before

    dropped = runner.invoke(
        reverse_etl_cmd, ["discard", "--target", "billing", "--reason", "bad city", "--json"]
    )
    assert dropped.exit_code == 0 and f'"discarded": {len(bad)}' in dropped.output
    assert sent_writes(company)["billing"] == []
    by_system = {row["system"]: row["state"] for row in company.outbox()}
    assert by_system == {"crm": "verified", "billing": "discarded", "shop": "held"}
    reverse_etl("v1")  # discarded writes are not planned again
    assert sent_writes(company)["billing"] == [] and sent_writes(company)["shop"] == []
    with psycopg.connect(company.url) as conn:
        audit = conn.execute(
            """select decision, system, entity, field, reason, decided_by, rows
               from rev.decisions order by decision_id"""
        ).fetchall()
    assert audit == [
        ("approve", "crm", "customer", "city", "city rename", "alice", len(bad)),
        ("discard", "billing", None, None, "bad city", "alice", len(bad)),
    ]
    missing = runner.invoke(reverse_etl_cmd, ["discard", "--target", "shop", "--reason", " "])
    assert missing.exit_code != 0 and "needs a reason" in missing.output


def test_brake_remembers_earlier_runs(company: Company) -> None:
    """15% of customers a night passes one night's brake, but not the 7-day window."""
    rows = customers(company)
    company.validated("v1")
    nightly = rows[: round(0.15 * len(rows))]
    with psycopg.connect(company.url) as conn:  # what the last nights sent, two days ago
        for n, row in enumerate(rows[-len(nightly) :]):
            conn.execute(
                """insert into rev.outbox (idempotency_key, system, entity, record_key, fields,
                       canonical_values, target_values, method, path, body, planned_run_id,
                       state, created_at, sent_at)
                   values (%s, 'crm', 'customer', %s, '{city}', '{}', '{}', 'PATCH', '/', '{}',
                           'night-1', 'verified', now() - interval '2 days',
                           now() - interval '2 days')""",
                (f"earlier-{n}", row["crm"]),
            )
    for row in nightly:
        company.finding(
            "customer", "crm", "city", row["crm"], f"City {row['key']}", canonical_key=row["key"]
        )
    figures = reverse_etl("v1")
    assert figures["held"]["writes"] == len(nightly)
    (reason,) = {r["held_reason"] for r in company.outbox() if r["state"] == "held"}
    share = 2 * len(nightly) / len(rows)
    assert reason == (
        f"safety brake: crm.customer.city: {2 * len(nightly)} of {len(rows)} records written in "
        f"168 h with this run ({share:.1%}), above 25%"
    )
    assert company.audit("crm") == []


def test_an_alert_holds_the_entity_writes(company: Company) -> None:
    rows = customers(company)
    company.validated("v1")
    alert = {"kind": "new_findings", "entity": "customer", "message": "19 new customer findings"}
    with psycopg.connect(company.url) as conn:
        conn.execute(
            "insert into recon.drift_runs (run_id, reconciled_at)"
            " values ('before', now() - interval '1 day')"
        )
        conn.execute(
            """insert into recon.drift_runs (run_id, alert_status, alerts)
               values ('setup', 'alert', %s::jsonb)""",
            (json.dumps([alert]),),
        )
    for row in rows[:3]:  # findings first seen in the alerting run ('setup')
        company.finding(
            "customer", "shop", "city", row["shop"], f"City {row['key']}", canonical_key=row["key"]
        )
    with psycopg.connect(company.url) as conn:  # and one that was open before: not held
        conn.execute(
            "update recon.findings set first_seen_run_id = 'before' where finding_id = "
            "(select max(finding_id) from recon.findings)"
        )
    figures = reverse_etl("v1")
    assert figures["planned_writes"] == 1
    assert figures["held"]["by_reason"] == [
        {
            "target": "shop.customer",
            "count": 2,
            "reason": "alert of reconcile run setup: 19 new customer findings",
        }
    ]
    applied = company.applied("shop")  # only the write of the finding open before the alert
    assert len(applied) == 1 and str(rows[2]["shop"]) in next(iter(applied))


def test_the_dag_path_records_a_build(company: Company) -> None:
    from tieout import orchestration

    figures = orchestration.record_transform("dag-run-1")
    with psycopg.connect(company.url) as conn:
        found = conn.execute(
            "select build_id, run_id, path from ops.builds order by built_at desc limit 1"
        ).fetchone()
    assert found == (figures["build_id"], "dag-run-1", "airflow")


def test_old_fingerprints_are_pruned_but_the_baseline_is_kept(company: Company) -> None:
    from tieout.config import load_validation

    keep = load_validation().keep_validations
    company.validated("v-first")
    for n in range(keep + 1):
        company.validated(f"v-{n}", failing="customer")  # the customer entity keeps failing
    with psycopg.connect(company.url) as conn:
        kept = conn.execute(
            "select distinct run_id, entity from ops.validated_rows order by 1, 2"
        ).fetchall()
    runs = {run for run, _ in kept}
    assert "v-0" not in runs and len(runs) == keep + 1
    assert ("v-first", "customer") in kept  # the last validation the customer passed
