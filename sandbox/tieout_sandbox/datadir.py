"""Where the sandbox keeps its files: SQLite per system, credentials, ground truth, logs.

Every sandbox module asks here for a path; nothing here creates data beyond empty folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_BASE_PORT = 8101


def state_dir() -> Path:
    """tieout's git-ignored state folder, found the way tieout finds it (`TIEOUT_STATE_DIR`,
    else `$TIEOUT_HOME/.tieout`, else `.tieout` in the repository this package sits in).

    The sandbox does not import tieout: it reads the same two variables instead."""
    if override := os.environ.get("TIEOUT_STATE_DIR"):
        return Path(override).resolve()
    home = os.environ.get("TIEOUT_HOME")
    root = Path(home).resolve() if home else Path(__file__).resolve().parents[2]
    return root / ".tieout"


def data_dir() -> Path:
    """`TIEOUT_SANDBOX_DIR` if set, else `<state dir>/sandbox`."""
    override = os.environ.get("TIEOUT_SANDBOX_DIR")
    path = Path(override).resolve() if override else state_dir() / "sandbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(directory: Path | str | None) -> Path:
    if directory is None:
        return data_dir()
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path(directory: Path, system: str) -> Path:
    return directory / f"{system}.sqlite"


def ground_truth_path(directory: Path) -> Path:
    return directory / "ground_truth.json"


def state_path(directory: Path) -> Path:
    return directory / "state.json"


def services_path(directory: Path) -> Path:
    return directory / "services.json"


def faults_path(directory: Path, system: str) -> Path:
    return directory / "faults" / f"{system}.json"


def log_path(directory: Path, system: str) -> Path:
    return directory / "logs" / f"{system}.log"


def base_port() -> int:
    return int(os.environ.get("TIEOUT_SANDBOX_BASE_PORT", DEFAULT_BASE_PORT))


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def write_json(path: Path, value: Any, private: bool = False) -> None:
    """Write atomically (temp file + rename); `private` files are readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
    if private:
        temporary.chmod(0o600)
    temporary.replace(path)
