"""The Integrations plugin loads through Airflow's plugins manager; its page is for signed-in
users and its health endpoint for a bearer token from the `tieout_health` connection."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tieout.config import load_config

TOKEN = "health-token-7f3a9c1e"


@pytest.fixture
def measured(new_warehouse: Any, measure: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A warehouse where erp's invoices failed its last run and everything else is healthy."""
    with new_warehouse("tieout_plugin") as url:
        monkeypatch.setenv("TIEOUT_DATABASE_URL", url)
        with psycopg.connect(url, autocommit=True) as conn:
            for n in range(3):
                measure(conn, f"scheduled__2026-12-0{n + 1}T02:00:00+00:00")
            measure(
                conn,
                "scheduled__2026-12-04T02:00:00+00:00",
                **{"erp.invoices": {"error": "erp.invoices: gave up after 9 attempts"}},
            )
        yield url


def mounted_client(apps: list[dict[str, Any]]) -> tuple[FastAPI, TestClient]:
    found = [a for a in apps if a["url_prefix"] == "/tieout-integrations"]
    assert len(found) == 1
    host = FastAPI()
    host.mount("/tieout-integrations", found[0]["app"])
    return found[0]["app"], TestClient(host)


def test_page_lists_every_source_and_target(airflow_plugins: Any, measured: str) -> None:
    plugins, errors, apps, views = airflow_plugins
    assert not {k: v for k, v in errors.items() if "tieout" in k}, errors
    assert "tieout_integrations" in {p.name for p in plugins}
    assert any(
        v["url_route"] == "tieout-integrations" and v["href"] == "/tieout-integrations/"
        for v in views
    )
    app, client = mounted_client(apps)
    assert client.get("/tieout-integrations/").status_code == 401, "the page needs a user"

    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides[get_user] = lambda: object()
    try:
        page = client.get("/tieout-integrations/")
        assert page.status_code == 200
        config = load_config()
        names = set(config.sources) | {f"{t.system}.{t.entity}" for t in config.reverse_etl.targets}
        for name in names:
            assert f">{name}</a>" in page.text
        assert page.text.count('<span class="state failing">failing</span>') == 1
        assert page.text.count("<svg") == 4 * len(names)

        runs = client.get("/tieout-integrations/integrations/source/erp")
        assert runs.status_code == 200
        assert "gave up after 9 attempts" in runs.text
        log_link = (
            "/dags/tieout_nightly/runs/scheduled__2026-12-04T02%3A00%3A00%2B00%3A00/tasks/"
            "extract.erp__invoices"
        )
        assert f'href="{log_link}">failing task log</a>' in runs.text
        assert client.get("/tieout-integrations/integrations/source/nope").status_code == 404
    finally:
        app.dependency_overrides.clear()


def test_health_endpoint_token(
    airflow_plugins: Any,
    measured: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, _, apps, _ = airflow_plugins
    _, client = mounted_client(apps)
    url = "/tieout-integrations/health.json"
    monkeypatch.delenv("AIRFLOW_CONN_TIEOUT_HEALTH", raising=False)
    assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 503

    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_HEALTH", json.dumps({"conn_type": "generic", "password": TOKEN})
    )
    assert client.get(url).status_code == 401
    wrong = client.get(url, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    assert client.get(url, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401

    ok = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    body = ok.json()
    states = {(i["kind"], i["name"]): i["state"] for i in body["integrations"]}
    assert states["source", "erp"] == "failing" and body["state"] == "failing"
    config = load_config()
    assert {n for k, n in states if k == "source"} == set(config.sources)
    assert {n for k, n in states if k == "target"} == {
        f"{t.system}.{t.entity}" for t in config.reverse_etl.targets
    }
    assert TOKEN not in caplog.text
