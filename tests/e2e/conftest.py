"""What the end-to-end tests share: one headless Chromium per test module (Debian's chromium
and chromium-driver, which `make browser` installs), and a warehouse, state folder and running
sandbox of a module's own (the CLI and UI steps are in tieout_cli.py, the pages in
airflow_pages.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import pytest

from .tieout_cli import Pipeline, free_base_port, tieout


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1500,1000",
    ):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def pipeline_of_its_own(
    new_warehouse: Callable[[str], ContextManager[str]],
    tmp_path_factory: pytest.TempPathFactory,
    output_dir: Path,
) -> Callable[[str, int], ContextManager[Pipeline]]:
    """`with pipeline_of_its_own(name, first_port) as (env, log, url, state):` a migrated
    database, a state folder and a sandbox (scale 1, seed 7) on free ports from `first_port`,
    with the environment that points `tieout` at them; the CLI's output goes to
    test-output/<name>.log. So no other test's findings or tables interfere."""

    @contextlib.contextmanager
    def start(name: str, first_port: int) -> Iterator[Pipeline]:
        with new_warehouse("tieout_" + name.replace("-", "_")) as url:
            state = tmp_path_factory.mktemp(name)
            env = {**os.environ, "TIEOUT_STATE_DIR": str(state), "TIEOUT_DATABASE_URL": url}
            env.pop("AIRFLOW_CONN_TIEOUT_WAREHOUSE", None)
            log = output_dir / f"{name}.log"
            log.write_text("")
            tieout(env, log, "sandbox", "seed", "--scale", "1", "--seed", "7")
            tieout(env, log, "sandbox", "up", "--base-port", str(free_base_port(first_port)))
            try:
                connections = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import json; from tieout.dev.local_airflow import sandbox_connections; "
                        "print(json.dumps(sandbox_connections()))",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                env.update(json.loads(connections.stdout.strip().splitlines()[-1]))
                yield env, log, url, state
            finally:
                subprocess.run(
                    [sys.executable, "-m", "tieout.cli", "sandbox", "down"], env=env, check=False
                )

    return start
