"""Secrets the sandbox services accept, and the Airflow connection URIs that carry them.

Created once per data folder and reused across reseeds; never printed or logged.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlencode

from tieout_sandbox import datadir


def ensure_credentials(directory: Path) -> dict[str, str]:
    """Load `credentials.json`, creating it (mode 0600) with fresh random secrets if absent."""
    path = directory / "credentials.json"
    if path.exists():
        loaded: dict[str, str] = datadir.read_json(path)
        if "billing_webhook_secret" not in loaded:  # folders seeded before webhooks existed
            loaded["billing_webhook_secret"] = "whsec_" + secrets.token_hex(24)
            datadir.write_json(path, loaded, private=True)
        return loaded
    created = {
        "crm_client_id": "tieout-" + secrets.token_hex(8),
        "crm_client_secret": secrets.token_urlsafe(24),
        "erp_api_key": secrets.token_urlsafe(24),
        "billing_secret_key": "sk_test_" + secrets.token_hex(24),
        "billing_webhook_secret": "whsec_" + secrets.token_hex(24),
        "shop_access_token": "shpat_" + secrets.token_hex(16),
        "admin_token": secrets.token_urlsafe(24),
    }
    datadir.write_json(path, created, private=True)
    return created


def load_credentials(directory: Path | None = None) -> dict[str, str]:
    """The credentials of a seeded sandbox; raises FileNotFoundError before `seed`."""
    folder = datadir.resolve(directory)
    loaded: dict[str, str] = datadir.read_json(folder / "credentials.json")
    return loaded


def connection_params(system: str, credentials: dict[str, str]) -> dict[str, str]:
    """The auth parameters a client of `system` needs, under the names the URIs use."""
    if system == "crm":
        return {
            "client_id": credentials["crm_client_id"],
            "client_secret": credentials["crm_client_secret"],
            "token_url": "/oauth/v1/token",
        }
    if system == "erp":
        return {"api_key": credentials["erp_api_key"], "header": "X-API-Key"}
    if system == "billing":
        params = {"secret_key": credentials["billing_secret_key"]}
        if "billing_webhook_secret" in credentials:
            params["webhook_secret"] = credentials["billing_webhook_secret"]
        return params
    if system == "shop":
        return {
            "access_token": credentials["shop_access_token"],
            "header": "X-Shopify-Access-Token",
        }
    raise ValueError(f"unknown sandbox system {system!r}")


def sandbox_connections(directory: Path | None = None) -> dict[str, str]:
    """Airflow connection URIs per system, e.g. {"crm": "http://127.0.0.1:8101?client_id=..."}.

    Base URLs come from `services.json` when the sandbox is up, else from the default ports.
    Set them as `AIRFLOW_CONN_TIEOUT_<SYSTEM>`; the query string carries the secrets.
    """
    folder = datadir.resolve(directory)
    credentials = load_credentials(folder)
    urls = service_urls(folder)
    return {
        system: f"{urls[system]}?{urlencode(connection_params(system, credentials))}"
        for system in urls
    }


def service_urls(directory: Path) -> dict[str, str]:
    from tieout_sandbox import SYSTEMS

    path = datadir.services_path(directory)
    if path.exists():
        services = datadir.read_json(path)
        return {system: services[system]["url"] for system in SYSTEMS if system in services}
    port = datadir.base_port()
    return {system: f"http://127.0.0.1:{port + n}" for n, system in enumerate(SYSTEMS)}
