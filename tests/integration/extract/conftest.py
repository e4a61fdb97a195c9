from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tieout.paths import config_dir


def _load_fake_api() -> ModuleType:
    name = "tieout_tests_fake_api"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[2] / "unit" / "extract" / "fake_api.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake_api = _load_fake_api()

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
def fake() -> ModuleType:
    return fake_api


@pytest.fixture
def api() -> Iterator[ModuleType]:
    server = fake_api.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
