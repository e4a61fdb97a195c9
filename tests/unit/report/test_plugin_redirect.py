"""The plugin's run redirect stays on the Airflow UI's own /tieout/runs/ pages, whatever the
run id in the address says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

PLUGIN = Path(__file__).resolve().parents[3] / "plugins" / "tieout_drift_report.py"


@pytest.fixture(scope="module")
def client() -> TestClient:
    spec = importlib.util.spec_from_file_location("tieout_drift_report_under_test", PLUGIN)
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    from airflow.api_fastapi.core_api.security import get_user

    plugin.app.dependency_overrides[get_user] = lambda: object()
    host = FastAPI()
    host.mount("/tieout", plugin.app)
    return TestClient(host, follow_redirects=False)


@pytest.mark.parametrize(
    "run_id",
    [
        "https:evil.example",
        "javascript:alert(1)",
        "%5C%5Cevil.example",
        "manual__2026-12-01T02:00:00+00:00",
    ],
)
def test_run_redirect_stays_on_site(client: TestClient, run_id: str) -> None:
    address = f"http://testserver/tieout/runs/{run_id}"
    response = client.get(address)
    assert response.status_code == 307
    target = urlsplit(urljoin(address, response.headers["location"]))
    assert (target.scheme, target.netloc) == ("http", "testserver")
    assert unquote(target.path) == f"/tieout/runs/{unquote(run_id)}/"
