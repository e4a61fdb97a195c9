"""Airflow 3 plugin: the Integrations page (Browse → Integrations) and a health endpoint for an
external monitor, both from one FastAPI app.

The page is for signed-in Airflow users; /health.json answers a bearer token kept as the password
of the Airflow connection `tieout_health`. It reads the warehouse and never writes to it, and the
token is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
import os
from datetime import UTC, datetime
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

URL_PREFIX = "/tieout-integrations"
TOKEN_CONNECTION = "tieout_health"

log = logging.getLogger(__name__)

app = FastAPI(title="tieout integrations", docs_url=None, redoc_url=None, openapi_url=None)


def _judged() -> list[Any]:
    from tieout import db
    from tieout.health.check import judge

    with db.connect(role="finance") as conn:
        return judge(conn)


def expected_token() -> str | None:
    """The password of the `tieout_health` connection (AIRFLOW_CONN_TIEOUT_HEALTH or Airflow's
    connections and secrets backends); None when it is not defined."""
    from tieout.http import connections

    value = os.environ.get(connections.env_name(TOKEN_CONNECTION))
    if value:
        return connections.parse(TOKEN_CONNECTION, value).password or None
    try:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(TOKEN_CONNECTION).password or None
    except Exception:  # noqa: BLE001 - not defined (the lookup raises), or no metadata database
        return None


def require_token(request: Request) -> None:
    expected = expected_token()
    if expected is None:
        raise HTTPException(
            status_code=503,
            detail=f"the health endpoint needs the Airflow connection {TOKEN_CONNECTION!r}",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


@app.get("/", response_class=HTMLResponse, dependencies=[Depends(get_user)])
def integrations_page() -> str:
    """Every source and target with its state, the rule that fired and its last runs."""
    from tieout import db
    from tieout.health.page import history, render_overview

    judged = _judged()
    with db.connect(role="finance") as conn:
        charts = history(conn)
    return render_overview(judged, charts)


@app.get(
    "/integrations/{kind}/{name}", response_class=HTMLResponse, dependencies=[Depends(get_user)]
)
def integration_runs(kind: str, name: str, request: Request) -> str:
    """One source's streams (or one target) run by run, with links to the task logs."""
    from tieout import db
    from tieout.health.page import render_runs, runs_of

    found = [j for j in _judged() if j.kind == kind and j.name == name]
    if kind not in ("source", "target") or not found:
        raise HTTPException(status_code=404, detail="no such source or target")
    with db.connect(role="finance") as conn:
        rows = runs_of(conn, kind, name)
    base = request.scope.get("root_path", "").removesuffix(URL_PREFIX)
    return render_runs(found[0], rows, base)


@app.get("/health.json", dependencies=[Depends(require_token)])
def health_json() -> dict[str, Any]:
    """The states `tieout health --json` prints, for an external monitor."""
    from tieout.health.rules import SEVERITY

    judged = _judged()
    worst = max((j.state for j in judged), key=SEVERITY.__getitem__, default="healthy")
    return {
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": worst,
        "integrations": [j.as_dict() for j in judged],
    }


class TieoutIntegrationsPlugin(AirflowPlugin):
    name = "tieout_integrations"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "tieout integrations"}]
    external_views = [
        {
            "name": "Integrations",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "tieout-integrations",
        }
    ]
