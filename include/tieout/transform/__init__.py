"""tieout.transform: runs the dbt project that turns raw.* into staging, canonical and finance.

It owns how dbt is invoked (the profile comes from the warehouse URL, no secret on disk) and
renders include/config/entities.yml into the project; it never writes to raw.* itself.
Importing it is cheap: its names load on first use (PEP 562), so the DAG file, which imports
only `tieout.transform.cosmos`, parses without loading dbt, psycopg or the runner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tieout.transform.entities import render_entities_macro
    from tieout.transform.runner import DbtError, DbtResult, dbt_env, run_dbt
    from tieout.transform.stage import build, generate_docs, parse_manifest

_HOMES = {
    "render_entities_macro": "tieout.transform.entities",
    "DbtError": "tieout.transform.runner",
    "DbtResult": "tieout.transform.runner",
    "dbt_env": "tieout.transform.runner",
    "run_dbt": "tieout.transform.runner",
    "build": "tieout.transform.stage",
    "generate_docs": "tieout.transform.stage",
    "parse_manifest": "tieout.transform.stage",
}

__all__ = [
    "DbtError",
    "DbtResult",
    "build",
    "dbt_env",
    "generate_docs",
    "parse_manifest",
    "render_entities_macro",
    "run_dbt",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'tieout.transform' has no attribute {name!r}")
