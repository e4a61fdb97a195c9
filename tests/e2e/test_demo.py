"""`tieout demo` from an empty state folder runs every stage, and a second demo is
idempotent and faster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tieout.db import embedded


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("demo-state")
    env = {**os.environ, "TIEOUT_STATE_DIR": str(state), "TIEOUT_EMBEDDED_PORT": "54400"}
    for name in (
        "TIEOUT_DATABASE_URL",
        "TIEOUT_AIRFLOW_DATABASE_URL",
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE",
    ):
        env.pop(name, None)
    yield state, env
    previous = os.environ.get("TIEOUT_STATE_DIR")
    os.environ["TIEOUT_STATE_DIR"] = str(state)
    try:
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
    first_s, first = run_demo(env, output_dir, "demo-first")
    summary_one = json.loads((state / "demo-summary.json").read_text())
    second_s, second = run_demo(env, output_dir, "demo-second")
    summary_two = json.loads((state / "demo-summary.json").read_text())

    for output in (first, second):
        assert "running tieout_nightly ... done" in output
        assert "prepare" in output
    assert "already at head" in second
    assert summary_one["run_id"] != summary_two["run_id"]
    assert set(summary_one["stages"]) == set(summary_two["stages"])
    assert all(stage["status"] == "success" for stage in summary_two["stages"].values())
    assert summary_two["stages"]["prepare"]["migrations_applied"] == 0
    assert second_s < first_s, f"second demo took {second_s:.0f}s, first {first_s:.0f}s"
