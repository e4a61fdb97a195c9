"""tieout.transform: runs the dbt project that turns raw.* into staging, canonical and finance.

It owns how dbt is invoked (the profile comes from the warehouse URL, no secret on disk) and
renders include/config/entities.yml into the project; it never writes to raw.* itself.
Importing it is cheap: dbt is loaded only when a command runs, so DAG files may import it.
"""

from tieout.transform.entities import render_entities_macro
from tieout.transform.runner import DbtError, DbtResult, dbt_env, run_dbt
from tieout.transform.stage import build, generate_docs, parse_manifest

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
