"""`tieout demo` from an empty state folder runs every stage, and a second demo is
idempotent (how long each takes, and that the second is faster: bench/demo.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest

from tieout.db import embedded
from tieout_sandbox import server

from .airflow_pages import sign_in, wait_for_text
from .tieout_cli import airflow_ui


@pytest.fixture(scope="module")
def demo_state(
    tmp_path_factory: pytest.TempPathFactory,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
):
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
    with scoped_env({"TIEOUT_STATE_DIR": str(state)}):
        # the demo leaves its sandbox running for a person to explore; a test must not, or
        # the next run's demo finds these ports answering with other credentials
        server.down(state / "sandbox")
        embedded.stop()


def run_demo(env: dict[str, str], output: Path, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    (output / f"{name}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


# two demos, each two nights through the scheduler: past the suite's 900 s on two busy cores
@pytest.mark.timeout(2700)
def test_demo_twice(demo_state, output_dir: Path) -> None:
    state, env = demo_state
    first = run_demo(env, output_dir, "demo-first")
    summary_one = json.loads((state / "demo-summary.json").read_text())
    second = run_demo(env, output_dir, "demo-second")
    summary_two = json.loads((state / "demo-summary.json").read_text())

    for output in (first, second):
        assert "running tieout_nightly, first night ... done" in output
        assert "running tieout_nightly, second night ... done" in output
        assert "prepare" in output
    assert "already at head" in second
    # the second demo runs the same two nights again (cleared, as a rerun of a date is), under
    # the same run ids, and sends no write twice
    assert summary_one["run_id"] == summary_two["run_id"]
    assert summary_two["stages"]["reverse_etl"].get("inserted", 0) == 0, summary_two["stages"]
    assert set(summary_one["stages"]) == set(summary_two["stages"])
    assert all(stage["status"] == "success" for stage in summary_two["stages"].values())
    assert summary_two["stages"]["prepare"]["migrations_applied"] == 0


@pytest.fixture(scope="module")
def ui(demo_state):
    """`tieout ui` on the demo's state, after test_demo_twice has run the pipeline."""
    state, env = demo_state
    with airflow_ui(env, state / "ui.log", timeout_s=240) as url:
        password = json.loads(
            (state / "airflow" / "simple_auth_manager_passwords.json").read_text()
        )
        yield url, "admin", password["admin"]


def test_browser_dag_grid_and_drift_report(ui, browser, demo_state, output_dir: Path) -> None:
    url, user, password = ui
    state, _ = demo_state
    sign_in(browser, url, user, password)

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


def backfill(env: dict[str, str], *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """`tieout backfill <args>` in a subprocess, its output captured; the caller checks it."""
    return subprocess.run(
        [sys.executable, "-m", "tieout.cli", "backfill", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_backfill_plans_a_run_per_day(demo_state) -> None:
    _, env = demo_state
    result = backfill(env, "--start", "2026-11-18", "--end", "2026-11-20", "--dry-run", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        assert day in result.stdout


def test_backfill_refuses_a_reversed_range(demo_state) -> None:
    _, env = demo_state
    result = backfill(env, "--start", "2026-11-20", "--end", "2026-11-18", timeout=120)
    assert result.returncode == 2
    assert "--start 2026-11-20 is after --end 2026-11-18" in result.stderr
