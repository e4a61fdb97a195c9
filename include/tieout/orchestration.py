"""The plain functions the Airflow DAG calls, one per task, so they can be tested without Airflow.

Nothing here may run at import time: the DAG file imports this module while parsing.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def prepare_warehouse(run_id: str) -> list[str]:
    """Check the config, then apply pending migrations, before any stage writes."""
    from tieout import runs
    from tieout.config import load_config
    from tieout.db import migrate

    config = load_config()
    applied = migrate.migrate()
    with runs.record_stage(run_id, "prepare") as figures:
        figures["migrations_applied"] = len(applied)
        figures["sources"] = len(config.sources)
        figures["entities"] = len(config.entities)
    log.info("migrations applied: %s", ", ".join(applied) or "none pending")
    return applied


def on_task_failure(context: dict[str, Any]) -> None:
    """Name the stage and the entity that failed, so the log line says what to look at."""
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    stage, _, rest = task_id.partition(".")
    exception = context.get("exception")
    log.error(
        "tieout stage %r failed in task %r%s: %s",
        stage,
        task_id,
        f" (entity {rest})" if rest else "",
        exception,
    )
