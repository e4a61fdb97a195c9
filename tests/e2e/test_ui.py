"""`tieout ui` starts the Airflow UI on localhost, prints the URL and a login that works."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import requests

from .tieout_cli import airflow_ui

ROOT = Path(__file__).resolve().parents[2]


def test_ui_prints_url_and_login_that_works(warehouse_url: str, output_dir: Path) -> None:
    log_path = output_dir / "ui.log"
    env = {**os.environ, "TIEOUT_DATABASE_URL": warehouse_url}
    env.pop("TIEOUT_AIRFLOW_DATABASE_URL", None)
    with airflow_ui(env, log_path, timeout_s=240) as url:
        port = urlsplit(url).port
        output = log_path.read_text(errors="replace")
        assert f"Airflow UI: http://127.0.0.1:{port}" in output
        login = re.search(r"login:\s+(\w+) \(password in (\S+)\)", output)
        assert login, output[:2000]
        import json

        password = json.loads(Path(login.group(2)).read_text())[login.group(1)]
        token = requests.post(
            f"http://127.0.0.1:{port}/auth/token",
            json={"username": login.group(1), "password": password},
            timeout=10,
        )
        assert token.status_code in (200, 201), token.text
        wrong = requests.post(
            f"http://127.0.0.1:{port}/auth/token",
            json={"username": login.group(1), "password": password + "x"},
            timeout=10,
        )
        assert wrong.status_code in (401, 403)
        assert password not in output
