"""Plan, send and verify against the sandbox: dry runs write nothing, acknowledged writes are
read back, dropped writes are caught and resent, failing rows are isolated and die after N."""

from __future__ import annotations

import psycopg

from tieout.reverse_etl.run import reverse_etl

from .conftest import Company


def crm_fixes(company: Company, count: int) -> list[str]:
    ids = []
    for contact in company.records("crm", "contacts", count):
        company.finding("customer", "crm", "city", contact["id"], f"Fixed {contact['id']}")
        company.finding("customer", "crm", "country", contact["id"], "AT")
        ids.append(contact["id"])
    return ids


def test_plan_writes_nothing(company: Company) -> None:
    crm_fixes(company, 3)
    company.validated("r1")
    figures = reverse_etl("r1", dry_run=True)
    assert figures["planned_writes"] == 3
    assert figures["fields_by_target"] == {"crm.customer.city": 3, "crm.customer.country": 3}
    assert figures["sample"][0]["values"]["country"] == "Austria"
    assert company.outbox() == []
    assert company.audit("crm") == []
    with psycopg.connect(company.url) as conn:
        assert conn.execute("select count(*) from ops.stage_runs where run_id='r1'").fetchone() == (
            0,
        )


def test_send_then_verify_next_run(company: Company) -> None:
    ids = crm_fixes(company, 4)
    erp = company.records("erp", "invoices", 2)
    for invoice in erp:
        company.finding("invoice", "erp", "status", invoice["invoice_no"], "void")
    billing = company.records("billing", "customers", 2)
    for customer in billing:
        company.finding("customer", "billing", "name", customer["id"], "Ada Lovelace")
    customers = company.records("erp", "customers", 1)
    company.finding("customer", "erp", "email", customers[0]["customer_no"], "ada@example.org")
    company.validated("r1")
    first = reverse_etl("r1")
    assert first["inserted"] == 9
    assert all(row["state"] == "acknowledged" for row in company.outbox())
    assert company.record("crm", "contacts", ids[0])["properties"]["country"] == "Austria"
    assert company.record("erp", "invoices", erp[0]["invoice_no"])["status"] == "VOID"
    assert company.record("erp", "customers", customers[0]["customer_no"])["email_address"] == (
        "ada@example.org"
    )
    company.validated("r2")
    second = reverse_etl("r2")
    assert sum(v.get("verified", 0) for v in second["verify"].values()) == 9
    assert {row["state"] for row in company.outbox()} == {"verified"}
    assert second["inserted"] == 0 and second["requests"] == 9  # reads only, no writes
    for system in ("crm", "erp", "billing"):
        assert set(company.applied(system).values()) == {1}


def test_dropped_writes_are_caught_and_resent(company: Company) -> None:
    crm_fixes(company, 5)
    company.fault("crm", drop_write_rate=1.0)
    company.validated("r1")
    reverse_etl("r1")
    assert all(row["state"] == "acknowledged" for row in company.outbox())
    assert sum(1 for row in company.audit("crm") if row["dropped"]) == 5
    company.fault("crm", drop_write_rate=0.0)
    company.validated("r2")
    second = reverse_etl("r2")
    assert second["verify"]["crm.customer"] == {"resend": 5}
    assert all(row["send_generation"] == 1 for row in company.outbox())
    company.validated("r3")
    third = reverse_etl("r3")
    assert third["verify"]["crm.customer"] == {"verified": 5}
    assert set(company.applied("crm").values()) == {1}


def test_failing_row_isolated_then_dead_then_replayed(company: Company) -> None:
    ids = crm_fixes(company, 4)
    # a contact id the crm does not have: 404 on read, for this row only
    company.finding("customer", "crm", "city", "999999999", "Nowhere")
    company.validated("r0")
    reverse_etl("r0")
    rows = {row["record_key"]: row for row in company.outbox()}
    assert rows["999999999"]["state"] == "failed" and rows["999999999"]["response_status"] == 404
    assert all(rows[i]["state"] == "acknowledged" for i in ids)
    for n in range(1, 6):
        company.validated(f"r{n}")
        reverse_etl(f"r{n}")
    rows = {row["record_key"]: row for row in company.outbox()}
    assert rows["999999999"]["state"] == "dead" and rows["999999999"]["attempts"] == 5
    with psycopg.connect(company.url, autocommit=True) as conn:
        from tieout.reverse_etl import outbox

        assert outbox.replay(conn) == 1
    rows = {row["record_key"]: row for row in company.outbox()}
    assert rows["999999999"]["state"] == "planned" and rows["999999999"]["attempts"] == 0


def test_brake_holds_before_sending(company: Company) -> None:
    for contact in company.records("crm", "contacts", 60):
        company.finding("customer", "crm", "city", contact["id"], "Brakeville")
    with psycopg.connect(company.url) as conn:
        conn.execute("delete from canonical.customers where customer_id ~ '^c[0-9]+$'")
        conn.execute(
            "insert into canonical.customers (customer_id) select 'c' || g"
            " from generate_series(1, 52) g"
        )  # 112 customers: 60 of them is 53.6 %
    company.validated("r1")
    dry = reverse_etl("r1", dry_run=True, force=True)
    assert dry["would_hold"]["writes"] == 0 and dry["planned_writes"] == 60
    figures = reverse_etl("r1")
    assert figures["held"]["writes"] == 60 and figures["inserted"] == 60
    (reason,) = {row["held_reason"] for row in company.outbox()}
    assert reason.startswith("safety brake: crm.customer.city: 60 of 112 records in this run")
    assert {row["state"] for row in company.outbox()} == {"held"}
    assert company.audit("crm") == []
    again = reverse_etl("r1")  # held writes are never planned again, nor sent on their own
    assert again["inserted"] == 0 and company.audit("crm") == []


def test_validation_failure_skips_entity(company: Company) -> None:
    crm_fixes(company, 2)
    erp = company.records("erp", "invoices", 1)
    company.finding("invoice", "erp", "status", erp[0]["invoice_no"], "void")
    company.validated("r1", failing="customer")
    figures = reverse_etl("r1")
    assert "critical validation failed" in figures["skipped"]["customer"]
    assert [row["entity"] for row in company.outbox()] == ["invoice"]
    assert company.audit("crm") == []
    with psycopg.connect(company.url) as conn:
        reasons = conn.execute("select system, reason from rev.skips where run_id='r1'").fetchall()
    assert {r[0] for r in reasons} == {"crm", "erp", "billing", "shop"}


def test_bad_record_keys_fail_one_row_each_and_the_plan_goes_on(company: Company) -> None:
    ids = crm_fixes(company, 2)
    for key in ("a\\q", "x?y#z", ".."):
        company.finding("customer", "crm", "city", key, "Nowhere")
    company.validated("k1")
    figures = reverse_etl("k1")
    rows = {row["record_key"]: row for row in company.outbox()}
    assert all(rows[i]["state"] == "acknowledged" for i in ids)
    # escaped into one path segment: the crm answers 404 for that row alone
    assert rows["a\\q"]["path"] == "/crm/v3/objects/contacts/a%5Cq"
    assert rows["x?y#z"]["path"] == "/crm/v3/objects/contacts/x%3Fy%23z"
    assert rows["x?y#z"]["state"] == "failed" and rows["x?y#z"]["response_status"] == 404
    # a dot segment is never sent: it is reported with its reason
    assert ".." not in rows
    (refused,) = figures["unmappable"]
    assert refused["record_key"] == ".." and "cannot be a path segment" in refused["reason"]
    assert all(not row["path"].endswith("/..") for row in company.audit("crm"))
