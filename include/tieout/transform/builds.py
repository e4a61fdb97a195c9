"""Build ids: every transform that wrote the canonical tables records one in ops.builds.

A validation is bound to the build it checked (tieout.validate.fingerprints), so reverse ETL can
refuse a validation that is older than what canonical holds now. Recording never rewrites a row.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from tieout import db


def new_build_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"build__{stamp}__{uuid.uuid4().hex[:6]}"


def record_build(
    run_id: str, path: str, canonical_rows: dict[str, int] | None = None, url: str | None = None
) -> str:
    """A new build id for the canonical tables as they are now; `path` says who built them
    (`cli` for `tieout transform`, `airflow` for the DAG's dbt task group)."""
    build_id = new_build_id()
    with db.connect(url) as conn:
        conn.execute(
            """insert into ops.builds (build_id, run_id, path, canonical_rows)
               values (%s, %s, %s, %s::jsonb)""",
            (build_id, run_id, path, json.dumps(canonical_rows or {})),
        )
    return build_id


def latest_build(conn: psycopg.Connection[Any]) -> tuple[str, str, datetime] | None:
    """(build_id, run_id, built_at) of the newest build, None before the first one."""
    row = conn.execute(
        "select build_id, run_id, built_at from ops.builds order by built_at desc, build_id desc"
        " limit 1"
    ).fetchone()
    return (str(row[0]), str(row[1]), row[2]) if row else None
