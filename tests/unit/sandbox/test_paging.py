"""Every paging style walks every record exactly once, full and incremental."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from tieout_sandbox import clock, datadir

from . import walkers

STREAMS = [
    ("crm", "contacts", "contacts", "id"),
    ("crm", "companies", "companies", "id"),
    ("erp", "customers", "customers", "customer_no"),
    ("erp", "sales-orders", "sales_orders", "order_no"),
    ("erp", "invoices", "invoices", "invoice_no"),
    ("erp", "products", "products", "sku"),
    ("billing", "customers", "customers", "id"),
    ("billing", "invoices", "invoices", "id"),
    ("billing", "payments", "payments", "id"),
    ("shop", "customers", "customers", "id"),
    ("shop", "orders", "orders", "id"),
    ("shop", "products", "products", "id"),
]
WALK = {
    "crm": walkers.walk_crm,
    "erp": walkers.walk_erp,
    "billing": walkers.walk_billing,
    "shop": walkers.walk_shop,
}


def stored(directory, system, table, since_ms=None):
    conn = sqlite3.connect(datadir.database_path(directory, system))
    try:
        if since_ms is None:
            return {row[0] for row in conn.execute(f"select pk from {table}")}
        return {
            row[0]
            for row in conn.execute(f"select pk from {table} where updated_ms >= ?", (since_ms,))
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def http(company):
    return company.clients()


@pytest.mark.parametrize(("system", "path", "table", "id_field"), STREAMS)
def test_full_walk_serves_every_record_once(company, http, system, path, table, id_field):
    records = WALK[system](http[system], path)
    ids = [record[id_field] for record in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == stored(company.directory, system, table)


def incremental_param(system: str, since_ms: int) -> dict:
    if system == "crm":
        return {"updatedAfter": clock.crm_time(since_ms)}
    if system == "erp":
        return {"modified_since": clock.erp_time(since_ms)}
    if system == "billing":
        return {"updated[gte]": since_ms // 1000}
    return {"updated_at_min": clock.shop_time(since_ms)}


@pytest.mark.parametrize(("system", "path", "table", "id_field"), STREAMS)
def test_incremental_walk_serves_records_updated_since(
    company, http, system, path, table, id_field
):
    since = int(datetime(2026, 8, 1, 12, 0, 0, tzinfo=UTC).timestamp() * 1000)
    records = WALK[system](http[system], path, **incremental_param(system, since))
    expected = stored(company.directory, system, table, since)
    assert {record[id_field] for record in records} == expected
    assert 0 < len(expected) < len(stored(company.directory, system, table)) or table == "companies"


def test_small_pages_have_the_documented_envelopes(http):
    crm = http["crm"].get("/crm/v3/objects/contacts", params={"limit": 3}).json()
    assert len(crm["results"]) == 3 and crm["paging"]["next"]["after"]
    erp = http["erp"].get("/api/v1/invoices", params={"offset": 5, "limit": 3}).json()
    assert (len(erp["items"]), erp["offset"], erp["limit"]) == (3, 5, 3) and erp["total"] > 9000
    billing = http["billing"].get("/v1/payments", params={"limit": 3}).json()
    assert billing["object"] == "list" and billing["has_more"] and billing["url"] == "/v1/payments"
    shop = http["shop"].get("/admin/api/2024-01/orders.json", params={"limit": 3})
    assert len(shop.json()["orders"]) == 3 and 'rel="next"' in shop.headers["Link"]


def test_bad_cursors_are_client_errors(http):
    assert http["crm"].get("/crm/v3/objects/contacts", params={"after": "%%%"}).status_code == 400
    assert (
        http["billing"].get("/v1/customers", params={"starting_after": "cus_nope"}).status_code
        == 400
    )
    assert (
        http["shop"].get("/admin/api/2024-01/orders.json", params={"page_info": "x"}).status_code
        == 400
    )
    shop = http["shop"].get("/admin/api/2024-01/orders.json", params={"limit": 2})
    combined = shop.links["next"]["url"] + "&updated_at_min=2026-01-01T00:00:00Z"
    assert http["shop"].get(combined).status_code == 400
    assert (
        http["erp"].get("/api/v1/customers", params={"modified_since": "yesterday"}).status_code
        == 400
    )
