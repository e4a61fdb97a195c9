"""`tieout summary --json` prints the latest run's figures as one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tieout import runs


def summary_json(warehouse_url: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "summary", "--json"],
        env={**os.environ, "TIEOUT_DATABASE_URL": warehouse_url},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_latest_run_with_each_stage(warehouse_url: str) -> None:
    with runs.record_stage("run-old", "extract") as figures:
        figures["rows"] = 1
    with runs.record_stage("run-new", "extract") as figures:
        figures["rows"] = 10
    with runs.record_stage("run-new", "transform") as figures:
        figures["models"] = 3
    summary = summary_json(warehouse_url)
    assert summary["run_id"] == "run-new"
    assert summary["stages"]["extract"]["rows"] == 10
    assert summary["stages"]["extract"]["status"] == "success"
    assert summary["stages"]["transform"]["models"] == 3
    assert summary["stages"]["transform"]["duration_s"] >= 0


def test_rerun_of_a_stage_replaces_its_row(warehouse_url: str, conn) -> None:
    for rows in (5, 7):
        with runs.record_stage("run-rerun", "extract") as figures:
            figures["rows"] = rows
    count, figures = conn.execute(
        "select count(*), max(figures->>'rows') from ops.stage_runs "
        "where run_id = 'run-rerun' and stage = 'extract'"
    ).fetchone()
    assert (count, figures) == (1, "7")


def test_failed_stage_is_recorded_as_failed(warehouse_url: str, conn) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        runs.record_stage("run-failed", "extract") as figures,
    ):
        figures["rows"] = 2
        raise RuntimeError("boom")
    status = conn.execute(
        "select status from ops.stage_runs where run_id = 'run-failed'"
    ).fetchone()
    assert status == ("failed",)
