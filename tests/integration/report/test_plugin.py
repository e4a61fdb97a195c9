"""The Airflow plugin loads through Airflow's own plugins manager and serves the runs page and
each run's report from the FastAPI app it registers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_plugin_serves_runs_and_reports(airflow_plugins, reported_run, tmp_path):
    plugins, errors, apps, views = airflow_plugins
    assert not {k: v for k, v in errors.items() if "tieout" in k}, errors
    assert "tieout_drift_report" in {p.name for p in plugins}
    mounted = [a for a in apps if a["url_prefix"] == "/tieout"]
    assert len(mounted) == 1
    assert any(v["url_route"] == "tieout-drift-reports" and v["href"] == "/tieout/" for v in views)

    plugin_app = mounted[0]["app"]
    host = FastAPI()
    host.mount("/tieout", plugin_app)
    client = TestClient(host)
    assert client.get("/tieout/").status_code == 401, "reports need a signed-in Airflow user"

    from airflow.api_fastapi.core_api.security import get_user

    plugin_app.dependency_overrides[get_user] = lambda: object()
    page = client.get("/tieout/")
    assert page.status_code == 200
    assert reported_run["run_id"] in page.text
    assert f'href="runs/{reported_run["run_id"]}/"' in page.text

    report = client.get(f"/tieout/runs/{reported_run['run_id']}/")
    assert report.status_code == 200
    assert "Drift report" in report.text
    csv = client.get(f"/tieout/runs/{reported_run['run_id']}/findings.csv")
    assert csv.status_code == 200
    assert csv.text.splitlines()[0].startswith("finding_id,status")

    assert client.get("/tieout/runs/../../etc/passwd").status_code == 404
    assert client.get(f"/tieout/runs/{reported_run['run_id']}/..%2F..%2Fx").status_code == 404
    assert client.get("/tieout/runs/no-such-run/").status_code == 404
    runs = client.get("/tieout/runs.json").json()
    assert reported_run["run_id"] in {r["run_id"] for r in runs}
    workbook = client.get(f"/tieout/runs/{reported_run['run_id']}/drift_report.xlsx")
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    plugin_app.dependency_overrides.clear()


def test_plugin_page_lists_held_writes(airflow_plugins, reported_run, report_db):
    import psycopg
    from airflow.api_fastapi.core_api.security import get_user

    _, _, apps, _ = airflow_plugins
    plugin_app = next(a for a in apps if a["url_prefix"] == "/tieout")["app"]
    host = FastAPI()
    host.mount("/tieout", plugin_app)
    plugin_app.dependency_overrides[get_user] = lambda: object()
    with psycopg.connect(report_db) as conn:
        assert "No write is held." in TestClient(host).get("/tieout/").text
        conn.execute(
            """insert into rev.outbox (idempotency_key, system, entity, record_key, entity_ref,
                   fields, finding_ids, canonical_values, target_values, method, path, body,
                   planned_run_id, state, held_reason, held_at)
               values ('held-plugin', 'crm', 'customer', '901', 'C-000901', '{city}', '{}',
                   '{}', '{}', 'PATCH', '/crm/v3/objects/contacts/901', '{}', 'report-run-1',
                   'held', 'alert: <b>money at stake</b> above 100 EUR', now())"""
        )
        conn.commit()
        try:
            page = TestClient(host).get("/tieout/").text
        finally:
            conn.execute("delete from rev.outbox where idempotency_key = 'held-plugin'")
            conn.commit()
            plugin_app.dependency_overrides.clear()
    assert "Held writes (1)" in page
    assert "C-000901" in page
    assert "alert: &lt;b&gt;money at stake&lt;/b&gt; above 100 EUR" in page
