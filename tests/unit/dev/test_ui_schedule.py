"""`tieout ui` never starts a night nobody asked for: its scheduler runs without the job
schedule, and what it prints names the DAG's real schedule and that nothing runs by it here."""

from __future__ import annotations

import re
from pathlib import Path

from tieout.dev import ui

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "tieout_nightly.py"


def test_the_ui_scheduler_creates_no_run_from_a_schedule(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path))
    # a configured warehouse, so building the environment starts no embedded server
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/tieout")
    env = ui.environment(8321)
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"
    assert env["AIRFLOW__API__PORT"] == "8321"


def test_the_ui_says_what_is_scheduled_when() -> None:
    schedule = re.search(r'schedule="([^"]+)"', DAG_FILE.read_text())
    assert schedule is not None
    assert schedule.group(1) in ui.SCHEDULE_NOTE
    assert "only the nights you trigger" in ui.SCHEDULE_NOTE
