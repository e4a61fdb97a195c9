"""What the integration suites share.

- `airflow_plugins`: tieout's Airflow plugins as Airflow's own plugins manager loads them from
  plugins/, with the manager's caches cleared before and after so each test loads them afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def airflow_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list, dict, list, list]]:
    """(plugins, import errors, FastAPI apps, UI views) as the plugins manager sees them."""
    from airflow import plugins_manager, settings

    monkeypatch.setattr(settings, "PLUGINS_FOLDER", str(ROOT / "plugins"))
    cached = [
        getattr(plugins_manager, name)
        for name in dir(plugins_manager)
        if hasattr(getattr(plugins_manager, name), "cache_clear")
    ]
    for function in cached:
        function.cache_clear()
    try:
        plugins, errors = plugins_manager._get_plugins()
        apps, _ = plugins_manager.get_fastapi_plugins()
        views, _ = plugins_manager._get_ui_plugins()
        yield plugins, errors, apps, views
    finally:
        for function in cached:
            function.cache_clear()
