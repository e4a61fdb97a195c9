"""Where tieout keeps its files: the repo, its config, and the git-ignored state folder.

Every stage asks here instead of guessing; nothing here creates or deletes data.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root (TIEOUT_HOME overrides, for installs outside the repo)."""
    home = os.environ.get("TIEOUT_HOME")
    if home:
        return Path(home).resolve()
    return Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The git-ignored folder for the embedded database, Airflow home, sandbox data, reports."""
    override = os.environ.get("TIEOUT_STATE_DIR")
    path = Path(override).resolve() if override else project_root() / ".tieout"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    override = os.environ.get("TIEOUT_CONFIG_DIR")
    return Path(override).resolve() if override else project_root() / "include" / "config"


def dbt_project_dir() -> Path:
    return project_root() / "dbt_project"


def dags_dir() -> Path:
    return project_root() / "dags"


def airflow_home() -> Path:
    return state_dir() / "airflow"


def reports_dir() -> Path:
    path = state_dir() / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path
