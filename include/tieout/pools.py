"""The prepare task makes sure every source's Airflow pool exists before any extract task waits.

Airflow 3 tasks may not touch its metadata database, so this goes through Airflow's REST API
(`/api/v2/pools`) with the `tieout_airflow_api` connection. A task whose pool does not exist
would wait forever without a word: when a pool cannot be created this fails, naming the
`airflow pools set` commands that fix it.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from tieout.http import connections
from tieout.http.airflow import API_CONNECTION, AirflowClient, LoginRefused

log = logging.getLogger(__name__)

API_CONN_ID = API_CONNECTION


class PoolsUnavailable(RuntimeError):
    """A source's pool is missing or wrong and Airflow's API would not fix it."""


def set_commands(wanted: dict[str, int]) -> str:
    return "; ".join(
        f"airflow pools set {name} {slots} 'tieout source {name}'" for name, slots in wanted.items()
    )


def ensure_pools(wanted: dict[str, int], timeout: float = 10.0) -> dict[str, str] | None:
    """Create missing pools and resize wrong ones; pool -> created | resized | ok.

    None when no `tieout_airflow_api` connection is configured: the deployment created the
    pools then (`tieout pools` after `airflow db migrate`), and nothing here can check them.
    """
    try:
        conn = connections.get(API_CONN_ID)
    except connections.ConnectionMissing:
        log.warning(
            "pools not checked: no %s connection; if extract tasks wait with 'non-existent "
            "pool', run: %s",
            API_CONN_ID,
            set_commands(wanted),
        )
        return None
    try:
        return _ensure(conn, wanted, timeout)
    except (
        requests.RequestException,
        PoolsUnavailable,
        LoginRefused,
        KeyError,
        ValueError,
    ) as exc:
        reason = connections.redact(str(exc) or type(exc).__name__, conn.secrets())
        raise PoolsUnavailable(
            f"could not create the Airflow pools {', '.join(wanted)} through {API_CONN_ID} "
            f"({reason}); extract tasks would wait for them forever. "
            f"Create them with: {set_commands(wanted)}"
        ) from None


def _ensure(conn: connections.Connection, wanted: dict[str, int], timeout: float) -> dict[str, str]:
    base = conn.base_url()
    if not base:
        raise PoolsUnavailable(f"connection {API_CONN_ID} names no host")
    api = AirflowClient(base, conn.login, conn.password, timeout_s=timeout, conn_id=API_CONN_ID)
    pools_path = "/api/v2/pools"
    listed = api.request("GET", pools_path, params={"limit": 1000})
    if listed.status_code >= 300:
        raise PoolsUnavailable(f"listing pools: HTTP {listed.status_code}")
    have: dict[str, dict[str, Any]] = {p["name"]: p for p in listed.json()["pools"]}
    done: dict[str, str] = {}
    for name, slots in wanted.items():
        if name not in have:
            response = api.request(
                "POST",
                pools_path,
                json={
                    "name": name,
                    "slots": slots,
                    "description": f"tieout source {name}",
                    "include_deferred": False,
                },
            )
            done[name] = "created"
        elif have[name]["slots"] != slots:
            response = api.request(
                "PATCH",
                f"{pools_path}/{name}",
                params={"update_mask": "slots"},
                # the API validates a whole pool even when the mask changes only its slots
                json={
                    "pool": name,
                    "slots": slots,
                    "include_deferred": bool(have[name].get("include_deferred")),
                },
            )
            done[name] = "resized"
        else:
            done[name] = "ok"
            continue
        if response.status_code >= 300:
            raise PoolsUnavailable(
                f"{done[name]} {name}: HTTP {response.status_code} {response.text[:200]}"
            )
    return done
