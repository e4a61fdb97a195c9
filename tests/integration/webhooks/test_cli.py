"""`tieout webhooks serve` as a process: it answers /healthz, records a signed event, refuses a
forged one, and `tieout webhooks events` lists both; no secret reaches its output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import SECRET, event, free_receiver_port, signed


def test_serve_and_events(warehouse_url: str, conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conn.execute("delete from ops.webhook_events")
    port = free_receiver_port()
    env = {
        **os.environ,
        "TIEOUT_DATABASE_URL": warehouse_url,
        "AIRFLOW_CONN_TIEOUT_BILLING": f"http://127.0.0.1:1?secret_key=sk&webhook_secret={SECRET}",
    }
    env.pop("AIRFLOW_CONN_TIEOUT_AIRFLOW_API", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tieout.cli",
                "webhooks",
                "serve",
                "--port",
                str(port),
                "--trigger",
                "none",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1, trust_env=False)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        assert health.json()["sources"] == ["billing"] and health.json()["trigger"] == "none"
        body = event("evt_cli_1")
        good = httpx.post(f"{base}/webhooks/billing", content=body, headers=signed(body))
        assert good.status_code == 200
        forged = httpx.post(
            f"{base}/webhooks/billing", content=body, headers=signed(body, secret="whsec_nope")
        )
        assert forged.status_code == 401
    finally:
        process.terminate()
        process.wait(15)
    listed = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "webhooks", "events", "--source", "billing"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "evt_cli_1" in listed
    assert "accepted" in listed and "bad_signature" in listed
    output = log.read_text()
    assert "webhooks for billing on http://127.0.0.1" in output
    assert SECRET not in output + listed and body.decode() not in output
