"""`tieout ui` starts the Airflow UI on localhost, prints the URL and a login that works."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_prints_url_and_login_that_works(warehouse_url: str, output_dir: Path) -> None:
    port = free_port()
    log_path = output_dir / "ui.log"
    env = {**os.environ, "TIEOUT_DATABASE_URL": warehouse_url}
    env.pop("TIEOUT_AIRFLOW_DATABASE_URL", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tieout.cli", "ui", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
                if health.status_code == 200:
                    healthy = True
                    break
            except requests.RequestException:
                pass
            time.sleep(2)
        output = log_path.read_text(errors="replace")
        assert healthy, output[-3000:]
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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
