from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml

from tieout.paths import config_dir
from tieout_sandbox import SYSTEMS, datadir, generate, server

LEDGER_YML = """\
# A fifth source that is not part of the sandbox: page numbers, API key, declared in YAML only.
name: ledger
base_url: http://ledger.invalid
connection_id: tieout_ledger
auth: {{kind: api_key, header: X-API-Key}}
paginator: {{kind: page_number, page_param: page, size_param: per_page,
            total_pages_path: meta.total_pages}}
page_size: 20
lookback: 1h
max_retries: 6
backoff_base_s: 0.01
backoff_max_s: 0.05
timeout_s: 0.5
commit_every_rows: {commit_every_rows}
rate_limit: {{requests_per_second: 500, burst: 50, max_concurrency: 1}}
streams:
  - name: items
    path: /pages/items
    records_path: data
    primary_key: [id]
    cursor_field: updated
    incremental: {{param: since, format: iso}}
"""


@pytest.fixture
def ledger(
    api: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conn: object
) -> Iterator[Path]:
    """A config folder with the shipped sources plus ledger.yml, and its connection."""
    folder = tmp_path / "config"
    shutil.copytree(config_dir(), folder)
    (folder / "sources" / "ledger.yml").write_text(LEDGER_YML.format(commit_every_rows=40))
    monkeypatch.setenv("TIEOUT_CONFIG_DIR", str(folder))
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_LEDGER",
        f"{api.url}?api_key={api.state.api_key}",  # type: ignore[attr-defined]
    )
    conn.execute("delete from ops.stage_runs where run_id like 'run-%'")  # type: ignore[attr-defined]
    for table in ("sync_state", "quarantine", "stream_fields", "schema_changes", "extract_runs"):
        conn.execute(f"delete from ops.{table} where source = 'ledger'")  # type: ignore[attr-defined]
    conn.execute("drop table if exists raw.ledger__items")  # type: ignore[attr-defined]
    yield folder


# ---------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    directory: Path
    config: Path
    env: dict[str, str]

    def source_keys(self, system: str, table: str) -> set[str]:
        """Every key the system holds, read from its own storage (not through the API)."""
        path = datadir.database_path(self.directory, system)
        with sqlite3.connect(path) as db:
            return {str(row[0]) for row in db.execute(f"select pk from {table}")}


def _test_sources(folder: Path) -> None:
    """Short timeouts, quick backoff, small pages and commits, so faults show within seconds."""
    for path in (folder / "sources").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        data.update(
            timeout_s=0.8,
            backoff_base_s=0.02,
            backoff_max_s=0.2,
            max_retries=8,
            commit_every_rows=100,
            page_size=min(data.get("page_size", 100), 50),
        )
        data["rate_limit"]["requests_per_second"] = 80
        data["rate_limit"]["burst"] = 20
        path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="session")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory,
    warehouse_url: str,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
    sandbox_env: Callable[[Path, Path], dict[str, str]],
) -> Iterator[Sandbox]:
    """The four sandbox systems (scale 0.1) on free ports, with a test copy of the sources."""
    directory = tmp_path_factory.mktemp("sandbox")
    generate.seed(directory, scale=0.1, seed_value=7)
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    server.up(directory, ports=ports)
    config = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(config_dir(), config)
    _test_sources(config)
    env = sandbox_env(directory, config)
    try:
        with scoped_env(env):
            yield Sandbox(directory, config, env)
    finally:
        server.down(directory)


def reset_stream(conn: psycopg.Connection, source: str, stream: str) -> None:
    conn.execute(f'drop table if exists raw."{source}__{stream}"')
    for table in ("sync_state", "stream_fields", "quarantine", "schema_changes"):
        conn.execute(f"delete from ops.{table} where source = %s and stream = %s", (source, stream))


@pytest.fixture
def fresh(conn: psycopg.Connection, sandbox: Sandbox):  # type: ignore[no-untyped-def]
    """Forget everything about one stream, so a test starts from an empty raw table."""

    def forget(source: str, stream: str) -> None:
        reset_stream(conn, source, stream)

    return forget
