"""Writes: each system's write endpoints apply, bump the update time, and land in the audit log;
an Idempotency-Key makes a retried write return the first answer and apply once, on every
system."""

from __future__ import annotations

import uuid

from tieout_sandbox import clock, datadir, storage

from . import walkers


def audit(sandbox, system):
    return storage.read_audit(datadir.database_path(sandbox.directory, system))


def test_crm_patch_contact_bumps_updated_at(faults_off):
    crm = faults_off.clients()["crm"]
    contact = crm.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]
    answer = crm.patch(
        f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": {"phone": "+4930000001"}}
    )
    assert answer.status_code == 200
    assert answer.json()["properties"]["phone"] == "+4930000001"
    assert answer.json()["updatedAt"] > contact["updatedAt"]
    since = answer.json()["updatedAt"]
    changed = walkers.walk_crm(crm, "contacts", updatedAfter=since)
    assert [c["id"] for c in changed] == [contact["id"]]
    assert (
        crm.patch(
            f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": {"nope": "x"}}
        ).status_code
        == 400
    )
    assert (
        crm.patch("/crm/v3/objects/contacts/1", json={"properties": {"phone": "1"}}).status_code
        == 404
    )
    rows = audit(faults_off, "crm")
    assert rows[-3]["applied"] == 1 and rows[-1]["applied"] == 0 and rows[-1]["status"] == 404


def test_erp_put_customer_and_invoice_status(faults_off):
    erp = faults_off.clients()["erp"]
    customer = erp.get("/api/v1/customers", params={"limit": 1}).json()["items"][0]
    body = {k: v for k, v in customer.items() if k not in ("modified_at",)}
    body["city"] = "Potsdam"
    answer = erp.put(f"/api/v1/customers/{customer['customer_no']}", json=body)
    assert answer.status_code == 200 and answer.json()["city"] == "Potsdam"
    assert erp.get(f"/api/v1/customers/{customer['customer_no']}").json()["city"] == "Potsdam"
    body.pop("street")
    assert erp.put(f"/api/v1/customers/{customer['customer_no']}", json=body).status_code == 422
    invoice = erp.get("/api/v1/invoices", params={"limit": 1}).json()["items"][0]
    answer = erp.put(f"/api/v1/invoices/{invoice['invoice_no']}/status", json={"status": "VOID"})
    assert answer.status_code == 200 and answer.json()["status"] == "VOID"
    assert answer.json()["modified_at"] >= invoice["modified_at"]
    assert (
        erp.put(
            f"/api/v1/invoices/{invoice['invoice_no']}/status", json={"status": "paid"}
        ).status_code
        == 422
    )


def test_shop_put_customer(faults_off):
    shop = faults_off.clients()["shop"]
    customer = shop.get("/admin/api/2024-01/customers.json", params={"limit": 1}).json()[
        "customers"
    ][0]
    answer = shop.put(
        f"/admin/api/2024-01/customers/{customer['id']}.json",
        json={"customer": {"email": "new@example.com", "default_address": {"city": "Boston"}}},
    )
    assert answer.status_code == 200
    served = shop.get(f"/admin/api/2024-01/customers/{customer['id']}.json").json()["customer"]
    assert served["email"] == "new@example.com" and served["default_address"]["city"] == "Boston"
    assert served["default_address"]["zip"] == customer["default_address"]["zip"]
    assert clock.parse_time(served["updated_at"], None) > clock.parse_time(
        customer["updated_at"], None
    )


def test_billing_idempotency_key_applies_once(faults_off):
    billing = faults_off.clients()["billing"]
    customer = billing.get("/v1/customers", params={"limit": 1}).json()["data"][0]
    before = len(walkers.walk_billing(billing, "payments"))
    key = str(uuid.uuid4())
    body = {"customer": customer["id"], "amount": 1234, "currency": "eur"}
    first = billing.post("/v1/payments", data=body, headers={"Idempotency-Key": key})
    second = billing.post("/v1/payments", data=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(walkers.walk_billing(billing, "payments")) == before + 1
    rows = [row for row in audit(faults_off, "billing") if row["idempotency_key"] == key]
    assert [(row["applied"], row["replayed"]) for row in rows] == [(1, 0), (0, 1)]
    other = billing.post(
        "/v1/payments", data={**body, "amount": 999}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    without_key = [billing.post("/v1/payments", json=body) for _ in range(2)]
    assert len({answer.json()["id"] for answer in without_key}) == 2


def test_billing_form_encoded_customer_update(faults_off):
    billing = faults_off.clients()["billing"]
    customer = next(c for c in walkers.walk_billing(billing, "customers") if not c["deleted"])
    answer = billing.post(
        f"/v1/customers/{customer['id']}",
        content="address[city]=Bern&metadata[note]=x",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert answer.status_code == 200
    assert answer.json()["address"]["city"] == "Bern"
    assert answer.json()["address"]["line1"] == customer["address"]["line1"]
    assert answer.json()["metadata"]["note"] == "x"
    assert answer.json()["metadata"].get("erp_customer_no") == customer["metadata"].get(
        "erp_customer_no"
    )
    assert billing.post(f"/v1/customers/{customer['id']}", data={"bogus": "1"}).status_code == 400
    invoice = billing.get("/v1/invoices", params={"limit": 1}).json()["data"][0]
    answer = billing.post(f"/v1/invoices/{invoice['id']}", json={"amount_due": 4242})
    assert answer.status_code == 200 and answer.json()["amount_due"] == 4242


def test_a_repeated_idempotency_key_replays_on_every_system_and_later_writes_still_apply(
    faults_off,
):
    """crm, erp and shop answered a repeated key with 500 and then 503 to every later write
    (the failed bookkeeping left their connection inside a transaction)."""
    erp = faults_off.clients()["erp"]
    customer = erp.get("/api/v1/customers", params={"limit": 1}).json()["items"][0]
    body = {k: v for k, v in customer.items() if k != "modified_at"}
    path = f"/api/v1/customers/{customer['customer_no']}"
    key = str(uuid.uuid4())
    first = erp.put(path, json={**body, "city": "Potsdam"}, headers={"Idempotency-Key": key})
    second = erp.put(path, json={**body, "city": "Potsdam"}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    rows = audit(faults_off, "erp")
    assert [r["applied"] for r in rows[-2:]] == [1, 0]
    other = erp.put(path, json={**body, "city": "Jena"}, headers={"Idempotency-Key": key})
    assert other.status_code == 400
    later = erp.put(path, json={**body, "city": "Weimar"})
    assert later.status_code == 200 and later.json()["city"] == "Weimar"

    crm = faults_off.clients()["crm"]
    contact = crm.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]
    patch = {"properties": {"phone": "+4930000002"}}
    url = f"/crm/v3/objects/contacts/{contact['id']}"
    answers = [crm.patch(url, json=patch, headers={"Idempotency-Key": key}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].json() == answers[0].json()
    assert crm.patch(url, json={"properties": {"phone": "+4930000003"}}).status_code == 200
