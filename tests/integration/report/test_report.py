"""The drift report: totals on the page, a CSV row per finding, a recon.drift_runs row, balances,
alerts that mark the run and reach the webhook, reverse ETL fixes and validation warnings."""

from __future__ import annotations

import csv
import re

import psycopg

from .conftest import reconcile_and_report
from .page_reader import Page


def test_findings_balances_and_alerts(reported_run, report_db, webhook):
    assert reported_run["open_findings"] == 3
    assert reported_run["money_at_stake"] == {"EUR": 301.0}
    assert reported_run["entities"]["invoice"]["fields_not_compared"] == ["due_at"]
    with psycopg.connect(report_db) as conn:
        findings = set(
            conn.execute(
                "select kind, system, field, entity_ref, money_impact from recon.findings"
            ).fetchall()
        )
        balances = set(
            conn.execute(
                """select check_name, subject_ref, outcome, difference from recon.balances
                   where run_id = 'report-run-1'"""
            ).fetchall()
        )
        drift = conn.execute(
            """select alert_status, alerts, report_html, report_csv, report_xlsx
               from recon.drift_runs
               where run_id = 'report-run-1'"""
        ).fetchone()
    assert {(k, s, f, r) for k, s, f, r, _ in findings} == {
        ("value_mismatch", "billing", "amount", "INV-2"),
        ("value_mismatch", "erp", "status", "INV-2"),
        ("missing_in_system", "billing", "", "INV-3"),
    }
    assert {(r, m) for _, _, f, r, m in findings if m is not None} == {
        ("INV-2", 1),
        ("INV-3", 300),
    }
    assert balances == {
        ("invoice_payments", "INV-2", "paid_amount_mismatch", -50),
        ("invoice_payments", "INV-3", "unpaid", -300),
        ("invoice_payments", "INV-4", "overpaid", 10),
        ("customer_payments", "cA", "underpaid", -50),
        ("customer_payments", "cB", "unpaid", -300),
        ("customer_payments", "cC", "overpaid", 10),
        ("payment_invoice", "py_5", "payment_without_invoice", 25),
        ("order_invoice", "5003", "order_without_invoice", -999),
        ("order_invoice", "5005", "amount_mismatch", -60),
    }
    alert_status, alerts, html_path, csv_path, xlsx_path = drift
    assert alert_status == "alert"
    assert {a["kind"] for a in alerts} == {"money_at_stake", "new_findings"}
    assert html_path == str(reported_run["paths"]["html"])
    assert csv_path == str(reported_run["paths"]["csv"])
    assert xlsx_path == str(reported_run["paths"]["xlsx"])
    assert webhook and webhook[0]["run_id"] == "report-run-1"
    assert "301.00 EUR at stake" in webhook[0]["text"]
    assert reported_run["notified"]["webhook"] == "HTTP 204"


def test_html_opens_with_what_to_do_and_works_offline(reported_run):
    html = reported_run["paths"]["html"].read_text()
    page = Page(html)
    todo = html.index("<h2>What to do</h2>")
    assert todo < html.index("Money in open differences, by currency and system")
    assert page.money_cards() == {"EUR": 301.0}
    billing = [r["what"]["text"] for r in page.tables["actions-billing"]["rows"]]
    assert "Create 1 invoice in billing" in billing
    for text in (
        "Alert: thresholds crossed",
        "How long open differences have been open",
        "Corrections written back (reverse ETL)",
        "Reverse ETL has not written anything yet.",
        "Validation warnings",
        "marked paid, payments differ",
        "paid_amount_mismatch",
        "<svg",
        "INV-3",
    ):
        assert text in html, text
    # nothing is loaded from the network: web addresses appear only as links to records
    loaded = re.sub(r'<a href="https?://[^"]*"', "<a", html)
    assert "http://" not in loaded.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in loaded
    assert "<script src" not in html and "<link" not in html and " src=" not in html
    assert 'href="http://127.0.0.1:8102/api/v1/invoices/INV-2"' in html


def test_breaks_apart_from_receivables(reported_run):
    page = Page(reported_run["paths"]["html"].read_text())
    breaks = {t: [r["what"]["text"] for r in page.tables[t]["rows"]] for t in ("actions-breaks",)}
    assert sorted(r.split(" ", 1)[0] for r in breaks["actions-breaks"]) == [
        "Apply",  # the payment without invoice
        "Check",  # INV-2: marked paid, 150 of 200 received
        "Check",  # order 5005: invoiced 10 against 70
        "Raise",  # order 5003 has no invoice
    ]
    receivable = page.tables["receivables-table"]["rows"]
    assert [(r["age"]["text"], r["outstanding EUR"]["text"]) for r in receivable] == [
        ("due date unknown", "300.00")
    ]
    overpaid = page.tables["overpaid-table"]["rows"]
    assert [r["invoice"]["text"] for r in overpaid] == ["INV-4"]


def test_csv_rows_equal_the_runs_findings(reported_run, report_db):
    with reported_run["paths"]["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    with psycopg.connect(report_db) as conn:
        ids = {
            str(r[0])
            for r in conn.execute(
                "select finding_id from recon.findings where last_seen_run_id = 'report-run-1'"
            ).fetchall()
        }
    assert {r["finding_id"] for r in rows} == ids
    assert len(rows) == len(ids)
    assert {r["status"] for r in rows} == {"open"}


def test_next_run_shows_new_resolved_fixed_and_warnings(reported_run, report_db):
    with psycopg.connect(report_db) as conn:
        conn.execute(
            "update intermediate.int_invoices_by_system set amount = 200 where system_key = 'in_2'"
        )
        conn.execute(
            "update intermediate.int_invoices_by_system set currency = 'CHF' "
            "where system_key = 'in_4'"
        )
        fixed = conn.execute(
            """select finding_id from recon.findings
               where entity_ref = 'INV-2' and field = 'amount'"""
        ).fetchone()[0]
        conn.execute(
            """insert into rev.outbox (idempotency_key, system, entity, record_key, fields,
                   finding_id, finding_ids, canonical_values, target_values, method, path,
                   body, planned_run_id, state)
               values ('k', 'billing', 'invoice', 'in_2', '{amount}', %s, array[%s::bigint],
                   '{}', '{}', 'POST', '/v1/invoices/in_2', '{}', 'report-run-1', 'verified')""",
            (fixed, fixed),
        )
        conn.execute(
            """insert into ops.validation_results (run_id, suite, expectation, expectation_type,
                   severity, entity, success, observed_value, unexpected_count)
               values ('report-run-2', 'canonical.invoices', 'amount_positive',
                   'expect_column_values_to_be_between', 'warning', 'invoice', false,
                   '{"min": -5}', 2)"""
        )
    second = reconcile_and_report(report_db, "report-run-2")
    assert (second["new_findings"], second["resolved_findings"]) == (1, 1)
    html = second["paths"]["html"].read_text()
    assert "amount_positive" in html
    assert "Resolved this run (1)" in html and "New this run (1)" in html
    page = Page(html)
    billing = {
        r["what"]["text"]: r["state"]["text"] for r in page.tables["actions-billing"]["rows"]
    }
    assert billing["Corrected amount of 1 invoice in billing; read back and verified"] == (
        "fixed tonight"
    )
    assert page.card("fixed") == "1"
    with second["paths"]["csv"].open() as handle:
        statuses = sorted((r["status"], r["new_in_run"]) for r in csv.DictReader(handle))
    assert statuses == [("open", "f"), ("open", "f"), ("open", "t"), ("resolved", "f")]
    with psycopg.connect(report_db) as conn:
        conn.execute("delete from rev.outbox")


def test_dead_and_held_writes_and_skipped_entities_are_listed(reported_run, report_db):
    with psycopg.connect(report_db) as conn:
        status, currency = conn.execute(
            """select finding_id from recon.findings
                   where entity_ref = 'INV-2' and field = 'status' or
                         entity_ref = 'INV-4' and field = 'currency'
                   order by entity_ref"""
        ).fetchall()
        conn.execute(
            """insert into rev.outbox (idempotency_key, system, entity, record_key, entity_ref,
                   fields, finding_id, finding_ids, canonical_values, target_values, method,
                   path, body, planned_run_id, state, attempts, last_error)
               values ('dead-1', 'erp', 'invoice', 'INV-2', 'INV-2', '{status}', %s,
                   array[%s::bigint], '{}', '{}', 'PUT', '/api/v1/invoices/INV-2/status', '{}',
                   'report-run-3', 'dead', 5, 'HTTP 404: no such invoice')""",
            (status[0], status[0]),
        )
        conn.execute(
            """insert into rev.outbox (idempotency_key, system, entity, record_key, entity_ref,
                   fields, finding_id, finding_ids, canonical_values, target_values, method,
                   path, body, planned_run_id, state, held_reason, held_at)
               values ('held-1', 'billing', 'invoice', 'in_4', 'INV-4', '{currency}', %s,
                   array[%s::bigint], '{}', '{}', 'POST', '/v1/invoices/in_4', '{}',
                   'report-run-3', 'held', 'safety brake: 40%% of billing invoices would change',
                   now())""",
            (currency[0], currency[0]),
        )
        conn.execute(
            """insert into rev.skips (run_id, system, entity, reason)
               values ('report-run-3', 'billing', 'customer',
                   'critical expectation failed: customer_id unique')"""
        )
    third = reconcile_and_report(report_db, "report-run-3")
    html = third["paths"]["html"].read_text()
    page = Page(html)
    erp = {r["state"]["text"]: r["what"]["text"] for r in page.tables["actions-erp"]["rows"]}
    assert erp["write gave up"] == (
        "Correction of status of 1 invoice in ERP gave up: HTTP 404: no such invoice "
        "(tieout reverse-etl replay tries again)"
    )
    billing = {
        r["state"]["text"]: r["what"]["text"] for r in page.tables["actions-billing"]["rows"]
    }
    assert billing["held"] == (
        "Correction of currency of 1 invoice in billing held: "
        "safety brake: 40% of billing invoices would change"
    )
    held = page.tables["held-table"]["rows"]
    assert [(r["record"]["text"], r["why held"]["text"]) for r in held] == [
        ("INV-4", "safety brake: 40% of billing invoices would change")
    ]
    dead = page.tables["dead-table"]["rows"]
    assert [(r["record"]["text"], r["last error"]["text"]) for r in dead] == [
        ("INV-2", "HTTP 404: no such invoice")
    ]
    reverse = html[html.index("Corrections written back") : html.index("Validation warnings")]
    assert "Skipped this run" in reverse
    assert "critical expectation failed: customer_id unique" in reverse
    with psycopg.connect(report_db) as conn:
        conn.execute("delete from rev.outbox")
        conn.execute("delete from rev.skips")
