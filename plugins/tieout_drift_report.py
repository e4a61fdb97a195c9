"""Airflow 3 plugin: tieout's drift reports inside the Airflow UI (a nav entry and a FastAPI app).

It lists runs from recon.drift_runs and serves each run's report files read-only to signed-in
users; it must never serve a path outside the reports folder, and never write to the warehouse.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

URL_PREFIX = "/tieout"

# Only signed-in Airflow users (the UI's session cookie or a bearer token) see the reports.
app = FastAPI(
    title="tieout drift reports",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    dependencies=[Depends(get_user)],
)


def _runs(limit: int = 200) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    from tieout import db

    with db.connect(role="finance") as conn, conn.cursor(row_factory=dict_row) as cur:
        exists = cur.execute("select to_regclass('recon.drift_runs') is not null as ok").fetchone()
        if not exists or not exists["ok"]:
            return []
        cur.execute(
            """select run_id, reconciled_at, open_findings, new_findings, resolved_findings,
                      waived_findings, money_at_stake, alert_status, alerts, report_html
               from recon.drift_runs order by reconciled_at desc limit %s""",
            (limit,),
        )
        return list(cur.fetchall())


def _report_file(run_id: str, name: str) -> Path:
    """A file of one run's report folder; anything else is a 404."""
    from tieout.paths import reports_dir

    root = reports_dir().resolve()
    path = (root / run_id / name).resolve()
    if root not in path.parents or not path.is_file():
        raise HTTPException(status_code=404, detail="no such report file")
    return path


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>tieout drift reports</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430}}
table{{border-collapse:collapse}}th,td{{padding:5px 10px;border-bottom:1px solid #e3e6eb;
text-align:left}}td.num{{text-align:right}}.alert{{color:#a3281b;font-weight:600}}
</style></head><body><h1>Drift reports</h1>{body}</body></html>"""


@app.get("/", response_class=HTMLResponse)
def runs_page() -> str:
    """Every reconciled run, newest first, with a link to its report."""
    rows = _runs()
    if not rows:
        return PAGE.format(body="<p>No run has been reconciled yet.</p>")
    lines = []
    for r in rows:
        money = ", ".join(f"{float(v):,.2f} {k}" for k, v in sorted(r["money_at_stake"].items()))
        link = (
            f'<a href="runs/{escape(r["run_id"])}/">report</a> · '
            f'<a href="runs/{escape(r["run_id"])}/findings.csv">csv</a>'
            if r["report_html"]
            else "not built"
        )
        alert = (
            f'<span class="alert" title="{escape("; ".join(a["message"] for a in r["alerts"]))}">'
            "alert</span>"
            if r["alert_status"] == "alert"
            else "ok"
        )
        lines.append(
            f"<tr><td>{escape(r['run_id'])}</td><td>{r['reconciled_at']:%Y-%m-%d %H:%M}</td>"
            f"<td class='num'>{r['open_findings']:,}</td><td class='num'>{r['new_findings']:,}"
            f"</td><td class='num'>{r['resolved_findings']:,}</td><td>{escape(money)}</td>"
            f"<td>{alert}</td><td>{link}</td></tr>"
        )
    head = (
        "<tr><th>run</th><th>reconciled</th><th>open</th><th>new</th><th>resolved</th>"
        "<th>money at stake</th><th>alerts</th><th></th></tr>"
    )
    return PAGE.format(body=f"<table><thead>{head}</thead><tbody>{''.join(lines)}</tbody></table>")


@app.get("/runs.json")
def runs_json() -> list[dict[str, Any]]:
    return [
        {**r, "reconciled_at": r["reconciled_at"].isoformat(), "report_html": None} for r in _runs()
    ]


@app.get("/runs/{run_id}")
def run_redirect(run_id: str) -> RedirectResponse:
    return RedirectResponse(url=f"{run_id}/")


@app.get("/runs/{run_id}/")
def run_report(run_id: str) -> FileResponse:
    return FileResponse(_report_file(run_id, "drift_report.html"), media_type="text/html")


@app.get("/runs/{run_id}/{name}")
def run_file(run_id: str, name: str) -> FileResponse:
    if name not in ("drift_report.html", "findings.csv", "summary.json"):
        raise HTTPException(status_code=404, detail="no such report file")
    return FileResponse(_report_file(run_id, name))


class TieoutDriftReportPlugin(AirflowPlugin):
    name = "tieout_drift_report"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "tieout drift reports"}]
    external_views = [
        {
            "name": "Drift reports",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "tieout-drift-reports",
        }
    ]
