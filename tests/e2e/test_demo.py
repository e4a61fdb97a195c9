"""`tieout demo` from an empty state folder runs every stage, and a second demo is
idempotent (how long each takes is a benchmark's business, not this test's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tieout.db import embedded
from tieout_sandbox import server


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("demo-state")
    env = {
        **os.environ,
        "TIEOUT_STATE_DIR": str(state),
        "TIEOUT_EMBEDDED_PORT": "54400",
        "TIEOUT_SANDBOX_BASE_PORT": "18101",
    }
    for name in (
        "TIEOUT_DATABASE_URL",
        "TIEOUT_AIRFLOW_DATABASE_URL",
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE",
    ):
        env.pop(name, None)
    # nor the stage roles' logins the test session exported for its own server: the demo's
    # server has passwords of its own, in its own state folder
    for name in [n for n in env if n.startswith("AIRFLOW_CONN_TIEOUT_WAREHOUSE_")]:
        env.pop(name)
    yield state, env
    previous = os.environ.get("TIEOUT_STATE_DIR")
    os.environ["TIEOUT_STATE_DIR"] = str(state)
    try:
        # the demo leaves its sandbox running for a person to explore; a test must not, or
        # the next run's demo finds these ports answering with other credentials
        server.down(state / "sandbox")
        embedded.stop()
    finally:
        if previous is None:
            os.environ.pop("TIEOUT_STATE_DIR", None)
        else:
            os.environ["TIEOUT_STATE_DIR"] = previous


def run_demo(env: dict[str, str], output: Path, name: str) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    elapsed = time.monotonic() - started
    (output / f"{name}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return elapsed, result.stdout


def test_demo_twice(demo_state, output_dir: Path) -> None:
    state, env = demo_state
    _, first = run_demo(env, output_dir, "demo-first")
    summary_one = json.loads((state / "demo-summary.json").read_text())
    _, second = run_demo(env, output_dir, "demo-second")
    summary_two = json.loads((state / "demo-summary.json").read_text())

    for output in (first, second):
        assert "running tieout_nightly, first night ... done" in output
        assert "running tieout_nightly, second night ... done" in output
        assert "prepare" in output
    assert "already at head" in second
    assert summary_one["run_id"] != summary_two["run_id"]
    assert set(summary_one["stages"]) == set(summary_two["stages"])
    assert all(stage["status"] == "success" for stage in summary_two["stages"].values())
    assert summary_two["stages"]["prepare"]["migrations_applied"] == 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ui(demo_state):
    """`tieout ui` on the demo's state, after test_demo_twice has run the pipeline."""
    import signal

    import requests

    state, env = demo_state
    port = free_port()
    log = (state / "ui.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tieout.cli", "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, (state / "ui.log").read_text()[-3000:]
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(2)
    password = json.loads((state / "airflow" / "simple_auth_manager_passwords.json").read_text())
    yield url, "admin", password["admin"]
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for_text(driver, text: str, timeout_s: float = 60) -> str:
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        try:
            body = driver.find_element("tag name", "body").text
        except StaleElementReferenceException:  # re-rendered (a redirect, the UI's router)
            time.sleep(0.2)
            continue
        if text in body:
            return body
        time.sleep(1)
    raise AssertionError(f"{text!r} not on {driver.current_url}; page says:\n{body[:2000]}")


def test_browser_dag_grid_and_drift_report(ui, browser, demo_state, output_dir: Path) -> None:
    url, user, password = ui
    state, _ = demo_state
    browser.get(url + "/")
    wait_for_text(browser, "Sign in")
    browser.find_element("name", "username").send_keys(user)
    browser.find_element("name", "password").send_keys(password)
    browser.find_element("xpath", "//button[normalize-space()='Sign in']").click()
    deadline = time.monotonic() + 60
    while "/auth/login" in browser.current_url and time.monotonic() < deadline:
        time.sleep(1)
    assert "/auth/login" not in browser.current_url, "login did not succeed"

    browser.get(url + "/dags/tieout_nightly")
    grid = wait_for_text(browser, "tieout_nightly")
    time.sleep(3)
    browser.save_screenshot(str(output_dir / "ui-dag-grid.png"))
    grid = browser.find_element("tag name", "body").text
    assert "extract" in grid and "transform" in grid, grid[:2000]

    summary = json.loads((state / "demo-summary.json").read_text())
    run_id = summary["run_id"]
    browser.get(url + "/tieout/")
    runs_page = wait_for_text(browser, run_id)
    assert "Drift reports" in runs_page or "drift" in runs_page.lower()
    assert "Held writes" in runs_page
    browser.save_screenshot(str(output_dir / "ui-drift-runs.png"))

    from urllib.parse import quote

    browser.get(url + f"/tieout/runs/{quote(run_id)}/")
    report = wait_for_text(browser, "Drift report")
    assert "WHAT TO DO" in report.upper()
    assert "MONEY IN OPEN DIFFERENCES" in report.upper()
    browser.save_screenshot(str(output_dir / "ui-drift-report.png"))


def test_backfill_plans_a_run_per_day(demo_state) -> None:
    _, env = demo_state
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tieout.cli",
            "backfill",
            "--start",
            "2026-11-18",
            "--end",
            "2026-11-20",
            "--dry-run",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        assert day in result.stdout


def test_backfill_refuses_a_reversed_range(demo_state) -> None:
    _, env = demo_state
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tieout.cli",
            "backfill",
            "--start",
            "2026-11-20",
            "--end",
            "2026-11-18",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--start 2026-11-20 is after --end 2026-11-18" in result.stderr
