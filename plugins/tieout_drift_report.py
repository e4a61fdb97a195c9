"""Airflow 3 plugin: tieout's drift reports inside the Airflow UI (a nav entry and a FastAPI app).

It lists every night (ops.stage_runs and recon.drift_runs, failed and partial ones with their
failing stages) and serves each run's report files read-only to signed-in
users; it must never serve a path outside the reports folder, and never write to the warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

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
    """Every night, reconciled or not, with its state and failing stages (tieout.report.page)."""
    from tieout import db
    from tieout.report.page import nights

    with db.connect(role="finance") as conn:
        return nights(conn, limit)


def _report_file(run_id: str, name: str) -> Path:
    """A file of one run's report folder; anything else is a 404."""
    from tieout.paths import reports_dir

    root = reports_dir().resolve()
    path = (root / run_id / name).resolve()
    if root not in path.parents or not path.is_file():
        raise HTTPException(status_code=404, detail="no such report file")
    return path


def _held(limit: int = 500) -> list[dict[str, Any]]:
    """Writes reverse ETL holds for a person (rev.outbox state 'held'), newest first."""
    from psycopg.rows import dict_row

    from tieout import db

    with db.connect(role="finance") as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """select outbox_id, system, entity, coalesce(entity_ref, record_key) as record,
                      array_to_string(fields, ', ') as fields, held_reason, held_at
               from rev.outbox where state = 'held'
               order by held_at desc nulls last, outbox_id limit %s""",
            (limit,),
        )
        return list(cur.fetchall())


@app.get("/", response_class=HTMLResponse)
def runs_page() -> str:
    """Every reconciled run, newest first, with its report, and the writes held for a person."""
    from tieout.report.page import render_runs

    return render_runs(_runs(), _held())


@app.get("/runs.json")
def runs_json() -> list[dict[str, Any]]:
    return [
        {
            **r,
            "at": r["at"].isoformat() if r["at"] else None,
            "reconciled_at": r["reconciled_at"].isoformat() if r["reconciled_at"] else None,
            "report_html": None,
        }
        for r in _runs()
    ]


@app.get("/runs/{run_id}")
def run_redirect(run_id: str) -> RedirectResponse:
    # a relative path that stays one: `./` and the id percent-encoded whole, so an id such as
    # `https:evil.example` or `\\evil.example` can never read as a scheme or a host
    return RedirectResponse(url=f"./{quote(run_id, safe='')}/")


@app.get("/runs/{run_id}/")
def run_report(run_id: str) -> FileResponse:
    return FileResponse(_report_file(run_id, "drift_report.html"), media_type="text/html")


@app.get("/runs/{run_id}/{name}")
def run_file(run_id: str, name: str) -> FileResponse:
    if name not in ("drift_report.html", "findings.csv", "drift_report.xlsx", "summary.json"):
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
