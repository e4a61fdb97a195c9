"""A new source's Airflow pool exists as soon as Airflow's metadata is migrated (`tieout ui`,
the demo, the cluster) or `tieout pools` runs; a pool that cannot be created names the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tieout import local_airflow, ui
from tieout.paths import config_dir

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def airflow_db(
    server_url: str, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """An empty Airflow metadata database, tieout state and a copy of the config of its own."""
    name = f"airflow_pools_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    parts = urlsplit(server_url)
    metadata = urlunsplit(("postgresql+psycopg2", parts.netloc, "/" + name, parts.query, ""))
    config = tmp_path / "config"
    shutil.copytree(config_dir(), config)
    monkeypatch.setenv("TIEOUT_AIRFLOW_DATABASE_URL", metadata)
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TIEOUT_CONFIG_DIR", str(config))
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    try:
        yield config
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def add_source(config: Path, name: str, max_concurrency: int) -> None:
    text = (config / "sources" / "crm.yml").read_text()
    text = text.replace("name: crm", f"name: {name}", 1)
    text = text.replace("max_concurrency: 2", f"max_concurrency: {max_concurrency}", 1)
    (config / "sources" / f"{name}.yml").write_text(text)


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
