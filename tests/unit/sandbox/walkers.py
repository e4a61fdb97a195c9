"""Reads every record of every sandbox stream over HTTP, one function per paging style.

Test helpers only: they follow the documented contract and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

SHOP_API = "/admin/api/2024-01"


def get(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
    """GET that waits out 429s as told by Retry-After (billing enforces a rate limit)."""
    while True:
        answer = client.get(url, params=params)
        if answer.status_code != 429:
            answer.raise_for_status()
            return answer
        time.sleep(float(answer.headers["Retry-After"]))


def crm_token(base: str, credentials: dict[str, str]) -> str:
    answer = httpx.post(
        f"{base}/oauth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["crm_client_id"],
            "client_secret": credentials["crm_client_secret"],
        },
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def walk_crm(
    client: httpx.Client, resource: str, limit: int = 100, **params: Any
) -> list[dict[str, Any]]:
    records, after = [], None
    while True:
        query = {"limit": limit, **params}
        if after:
            query["after"] = after
        page = get(client, f"/crm/v3/objects/{resource}", params=query)
        body = page.json()
        records.extend(body["results"])
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            return records


def walk_erp(
    client: httpx.Client, path: str, limit: int = 1000, **params: Any
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = get(client, f"/api/v1/{path}", params={"offset": offset, "limit": limit, **params})
        body = page.json()
        records.extend(body["items"])
        offset += len(body["items"])
        if not body["items"] or offset >= body["total"]:
            assert offset == body["total"]
            return records


def walk_billing(
    client: httpx.Client, resource: str, limit: int = 100, **params: Any
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while True:
        query = {"limit": limit, **params}
        if records:
            query["starting_after"] = records[-1]["id"]
        page = get(client, f"/v1/{resource}", params=query)
        body = page.json()
        records.extend(body["data"])
        if not body["has_more"]:
            return records


def walk_shop(
    client: httpx.Client, resource: str, limit: int = 250, **params: Any
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    url: str | None = f"{SHOP_API}/{resource}.json"
    query: dict[str, Any] | None = {"limit": limit, **params}
    while url:
        page = get(client, url, params=query)
        records.extend(page.json()[resource])
        url = page.links.get("next", {}).get("url")
        query = None
    return records


def clients(urls: dict[str, str], credentials: dict[str, str]) -> dict[str, httpx.Client]:
    return {
        "crm": httpx.Client(
            base_url=urls["crm"],
            headers={"Authorization": f"Bearer {crm_token(urls['crm'], credentials)}"},
            timeout=30,
        ),
        "erp": httpx.Client(
            base_url=urls["erp"], headers={"X-API-Key": credentials["erp_api_key"]}, timeout=30
        ),
        "billing": httpx.Client(
            base_url=urls["billing"],
            headers={"Authorization": f"Bearer {credentials['billing_secret_key']}"},
            timeout=30,
        ),
        "shop": httpx.Client(
            base_url=urls["shop"],
            headers={"X-Shopify-Access-Token": credentials["shop_access_token"]},
            timeout=30,
        ),
    }


def read_everything(http: dict[str, httpx.Client]) -> dict[str, list[dict[str, Any]]]:
    """Every stream, keyed '<system>.<resource>'."""
    return {
        "crm.contacts": walk_crm(http["crm"], "contacts"),
        "crm.companies": walk_crm(http["crm"], "companies"),
        "erp.customers": walk_erp(http["erp"], "customers"),
        "erp.products": walk_erp(http["erp"], "products"),
        "erp.sales_orders": walk_erp(http["erp"], "sales-orders"),
        "erp.invoices": walk_erp(http["erp"], "invoices"),
        "billing.customers": walk_billing(http["billing"], "customers"),
        "billing.invoices": walk_billing(http["billing"], "invoices"),
        "billing.payments": walk_billing(http["billing"], "payments"),
        "shop.customers": walk_shop(http["shop"], "customers"),
        "shop.orders": walk_shop(http["shop"], "orders"),
        "shop.products": walk_shop(http["shop"], "products"),
    }


def in_process_clients(directory: Any) -> dict[str, httpx.Client]:
    """The same authenticated clients, talking to the apps in-process (no ports, no processes)."""
    from fastapi.testclient import TestClient

    from tieout_sandbox import credentials, server

    secrets = credentials.load_credentials(directory)
    made = {
        system: TestClient(server.create_app(system, directory))
        for system in ("crm", "erp", "billing", "shop")
    }
    token = (
        made["crm"]
        .post(
            "/oauth/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": secrets["crm_client_id"],
                "client_secret": secrets["crm_client_secret"],
            },
        )
        .json()["access_token"]
    )
    made["crm"].headers["Authorization"] = f"Bearer {token}"
    made["erp"].headers["X-API-Key"] = secrets["erp_api_key"]
    made["billing"].headers["Authorization"] = f"Bearer {secrets['billing_secret_key']}"
    made["shop"].headers["X-Shopify-Access-Token"] = secrets["shop_access_token"]
    return made
