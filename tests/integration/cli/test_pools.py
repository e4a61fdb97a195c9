"""A new source's Airflow pool exists as soon as Airflow's metadata is migrated (`tieout ui`,
the demo, the cluster) or `tieout pools` runs; a pool that cannot be created names the fix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from tieout.dev import local_airflow, ui
from tieout.paths import config_dir

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def airflow_db(
    new_database: Callable[[str], ContextManager[str]],
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """An empty Airflow metadata database, tieout state and a copy of the config of its own."""
    with new_database("airflow_pools") as url:
        parts = urlsplit(url)
        metadata = urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, parts.query, ""))
        config = tmp_path / "config"
        shutil.copytree(config_dir(), config)
        monkeypatch.setenv("TIEOUT_AIRFLOW_DATABASE_URL", metadata)
        monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("TIEOUT_CONFIG_DIR", str(config))
        monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
        yield config


def add_source(config: Path, name: str, max_concurrency: int) -> None:
    text = (config / "sources" / "crm.yml").read_text()
    text = text.replace("name: crm", f"name: {name}", 1)
    text = text.replace("max_concurrency: 2", f"max_concurrency: {max_concurrency}", 1)
    data = yaml.safe_load(text)
    data.pop("record_urls", None)  # a new source holds no copy of crm's entities
    (config / "sources" / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))


def pools() -> dict[str, int]:
    listed = subprocess.run(
        [ui.airflow_bin(), "pools", "list", "--output", "json"],
        env=local_airflow.environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return {row["pool"]: int(row["slots"]) for row in json.loads(listed.stdout)}


def test_new_source_gets_its_pool_without_a_manual_step(airflow_db: Path) -> None:
    add_source(airflow_db, "ledger", 3)
    # what `tieout ui` (and the background UI of the tests) runs before Airflow starts
    ui.migrate_metadata(local_airflow.environment())
    found = pools()
    assert found["source_ledger"] == 3
    assert found["source_crm"] == 2

    # the YAML changes: `tieout pools` follows it, no file to regenerate by hand
    add_source(airflow_db, "ledger", 5)
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "pools"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "source_ledger: 5 slots" in result.stdout
    assert pools()["source_ledger"] == 5


def test_pools_that_cannot_be_created_name_the_command(airflow_db: Path) -> None:
    env = local_airflow.environment()
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql+psycopg2://nobody@127.0.0.1:9/none"
    with pytest.raises(local_airflow.PoolsNotCreated) as raised:
        local_airflow.sync_pools(env)
    message = str(raised.value)
    assert "could not create the Airflow pools source_billing" in message
    assert "airflow pools set source_crm 2 'tieout source source_crm'" in message


@pytest.fixture
def api_server(airflow_db: Path, tmp_path: Path) -> Iterator[str]:
    """A real Airflow api-server on the fresh metadata database; its URL."""
    from tieout.dev.cluster import free_port

    port = free_port()
    env = local_airflow.environment(ui_port=port)
    subprocess.run([ui.airflow_bin(), "db", "migrate"], env=env, check=True, capture_output=True)
    with open(tmp_path / "api-server.log", "wb") as log:
        server = subprocess.Popen(
            [ui.airflow_bin(), "api-server", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ui.wait_healthy(port, timeout_s=180)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_prepare_task_creates_a_new_sources_pool_through_the_api(
    airflow_db: Path, api_server: str, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tieout import orchestration
    from tieout import pools as pools_module

    password = quote(local_airflow.admin_password(), safe="")
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_AIRFLOW_API", f"http://admin:{password}@{api_server}")
    add_source(airflow_db, "ledger", 3)
    orchestration.prepare_warehouse("run-pools-1")
    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute(
            "select figures -> 'pools' from ops.stage_runs where run_id = 'run-pools-1'"
        ).fetchone()
    assert row is not None and row[0]["source_ledger"] == "created"
    assert pools()["source_ledger"] == 3

    add_source(airflow_db, "ledger", 5)
    assert pools_module.ensure_pools({"source_ledger": 5, "source_crm": 2}) == {
        "source_ledger": "resized",
        "source_crm": "ok",
    }
    assert pools()["source_ledger"] == 5

    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_AIRFLOW_API", f"http://admin:wrong-secret@{api_server}")
    with pytest.raises(pools_module.PoolsUnavailable) as raised:
        pools_module.ensure_pools({"source_ledger": 5})
    message = str(raised.value)
    assert "could not create the Airflow pools source_ledger" in message
    assert "airflow pools set source_ledger 5 'tieout source source_ledger'" in message
    assert "wrong-secret" not in message
