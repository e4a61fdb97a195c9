"""The Integrations page in the real Airflow UI, in Chromium: real extracts of every stream against
the sandbox, three runs, the last one with erp's error-rate knob turned up; erp shows degraded
with the rule that fired, the others healthy; the health endpoint answers its token only."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tieout.config import load_config
from tieout.extract.run import extract_stream
from tieout.health.check import judge
from tieout.paths import config_dir
from tieout_sandbox import SYSTEMS, generate, server

from .airflow_pages import sign_in, wait_for_text
from .tieout_cli import airflow_ui

TOKEN = "monitor-token-5d1e77b2"
FAULT = {"error_rate": 0.12, "seed": 11}  # erp, last run: some requests fail, most pass


@pytest.fixture(scope="module")
def measured_runs(
    tmp_path_factory: pytest.TempPathFactory,
    warehouse_url: str,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
    sandbox_env: Callable[[Path, Path], dict[str, str]],
) -> Iterator[dict[str, str]]:
    """The sandbox, a config with quick retries, and three extract runs of every stream."""
    directory = tmp_path_factory.mktemp("sandbox")
    generate.seed(directory, scale=0.1, seed_value=3)
    server.up(directory, ports=dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True)))
    config = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(config_dir(), config)
    for path in (config / "sources").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        data.update(timeout_s=2, backoff_base_s=0.02, backoff_max_s=0.2, max_retries=8)
        data.update(page_size=20)  # enough requests per stream for an error rate to mean much
        # the seeded records are weeks old: a limit they meet, so freshness is judged and passes
        data.update(freshness={"warn_after": "120d", "error_after": "180d"})
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    env = sandbox_env(directory, config)
    try:
        with scoped_env(env):
            sources = load_config().sources
            for n in range(1, 4):
                if n == 3:
                    server.set_faults("erp", directory, **FAULT)
                for source in sources.values():
                    for stream in source.streams:
                        full = n == 3 and source.name == "erp"  # every page, so the knob shows
                        extract_stream(
                            source.name,
                            stream.name,
                            f"scheduled__2026-12-0{n}T02:00:00+00:00",
                            full,
                        )
            yield env
    finally:
        server.down(directory)


def test_erp_is_degraded_by_its_fault_knob(measured_runs: dict[str, str], conn: Any) -> None:
    states = {(j.kind, j.name): j for j in judge(conn)}
    erp = states["source", "erp"]
    rows = conn.execute(
        """select run_id, source, stream, requests, errors_5xx, freshness_lag_s / 3600
           from ops.integration_metrics order by source, stream, run_id"""
    ).fetchall()
    assert (erp.state, erp.rule) == ("degraded", "error_rate"), (erp, rows)
    others = {k: j.state for k, j in states.items() if k != ("source", "erp")}
    assert set(others.values()) == {"healthy"}, others


@pytest.fixture(scope="module")
def ui(
    measured_runs: dict[str, str], warehouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    env = {
        **os.environ,
        **measured_runs,
        "TIEOUT_DATABASE_URL": warehouse_url,
        "AIRFLOW_CONN_TIEOUT_HEALTH": json.dumps({"conn_type": "generic", "password": TOKEN}),
        # the page must show the runs this module made: no scheduled night may add its own
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    env.pop("TIEOUT_AIRFLOW_DATABASE_URL", None)
    log_path = tmp_path_factory.mktemp("ui") / "ui.log"
    with airflow_ui(env, log_path, timeout_s=300) as url:
        from tieout.dev import local_airflow

        password = json.loads(local_airflow.passwords_file().read_text())["admin"]
        yield url, "admin", password
        assert TOKEN not in log_path.read_text(errors="replace"), "the token reached a log"


def test_health_endpoint_answers_its_token_only(ui: tuple[str, str, str]) -> None:
    url = ui[0] + "/tieout-integrations/health.json"
    assert requests.get(url, timeout=30).status_code == 401
    wrong = requests.get(url, headers={"Authorization": f"Bearer {TOKEN[:-1]}"}, timeout=30)
    assert wrong.status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert ok.status_code == 200
    states = {(i["kind"], i["name"]): i["state"] for i in ok.json()["integrations"]}
    assert states["source", "erp"] == "degraded"


def test_integrations_page_in_chromium(
    ui: tuple[str, str, str], browser: Any, output_dir: Path
) -> None:
    url, user, password = ui
    sign_in(browser, url, user, password)

    browser.get(url + "/tieout-integrations/")
    page = wait_for_text(browser, "Integrations")
    config = load_config()
    for name in [*config.sources, *(f"{t.system}.{t.entity}" for t in config.reverse_etl.targets)]:
        assert name in page
    erp_row = browser.find_element("xpath", "//tr[td/a[normalize-space()='erp']]").text
    assert "degraded" in erp_row and "error_rate" in erp_row, erp_row
    # four charts a source row, each drawn once the source has runs
    charts = len(browser.find_elements("css selector", "svg.spark polyline"))
    assert charts >= 4 * len(config.sources)
    browser.save_screenshot(str(output_dir / "ui-integrations.png"))

    # the same page as Airflow shows it from Browse → Integrations: inside its own frame
    browser.get(url + "/plugin/tieout-integrations")
    deadline = time.monotonic() + 60
    while not browser.find_elements("tag name", "iframe") and time.monotonic() < deadline:
        time.sleep(1)
    frame = browser.find_element("tag name", "iframe")
    assert frame.get_attribute("src").endswith("/tieout-integrations/")
    browser.switch_to.frame(frame)
    wait_for_text(browser, "degraded")
    browser.switch_to.default_content()
    time.sleep(2)
    browser.save_screenshot(str(output_dir / "ui-integrations-in-airflow.png"))
    browser.get(url + "/tieout-integrations/")
    wait_for_text(browser, "Integrations")

    browser.find_element("link text", "erp").click()
    runs = wait_for_text(browser, "task log")
    assert "scheduled__2026-12-03T02:00:00+00:00" in runs
    # the row of that run (the UI's scheduler may have added tonight's run above it)
    link = browser.find_element(
        "xpath",
        "//tr[contains(., 'scheduled__2026-12-03T02:00:00+00:00')]//a[contains(., 'task log')]",
    ).get_attribute("href")
    assert (
        "/dags/tieout_nightly/runs/scheduled__2026-12-03T02%3A00%3A00%2B00%3A00/tasks/extract.erp__"
        in link
    )
    browser.save_screenshot(str(output_dir / "ui-integration-erp.png"))
