"""The receiver's Airflow trigger against a real Airflow 3: it logs in at /auth/token and
starts a run of tieout_extract_billing with the streams in its conf."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tieout.webhooks import trigger

from .tieout_cli import airflow_ui


def wait_for(check, timeout: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"{what} not within {timeout:.0f} s:\n" + log.read_text()[-3000:])


def test_airflow_rest_trigger_starts_the_extract_dag(
    warehouse_url: str, output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_path = output_dir / "webhooks-airflow.log"
    env = {**os.environ, "TIEOUT_DATABASE_URL": warehouse_url}
    env.pop("TIEOUT_AIRFLOW_DATABASE_URL", None)
    with airflow_ui(env, log_path, timeout_s=300) as base:
        port = urlsplit(base).port
        login = re.search(r"login:\s+(\w+) \(password in (\S+)\)", log_path.read_text())
        assert login
        user = login.group(1)
        password = json.loads(Path(login.group(2)).read_text())[user]
        monkeypatch.setenv(
            "AIRFLOW_CONN_TIEOUT_AIRFLOW_API", f"http://{user}:{password}@127.0.0.1:{port}"
        )
        mode, runner = trigger.choose_runner("auto")
        assert mode == "airflow" and isinstance(runner, trigger.AirflowApi)
        token = requests.post(
            f"{base}/auth/token", json={"username": user, "password": password}, timeout=10
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        wait_for(
            lambda: (
                requests.get(
                    f"{base}/api/v2/dags/tieout_extract_billing", headers=auth, timeout=5
                ).ok
            ),
            300,
            "tieout_extract_billing parsed",
            log_path,
        )
        run_id = runner("billing", ["invoices"])
        run = requests.get(
            f"{base}/api/v2/dags/tieout_extract_billing/dagRuns/{run_id}", headers=auth, timeout=10
        )
        assert run.status_code == 200, run.text
        assert run.json()["conf"] == {"streams": ["invoices"]}
        assert run.json()["run_type"] == "manual"
        assert password not in log_path.read_text()
