"""What a rerun of the dbt project must rebuild: everything downstream of a raw table that gained
rows since the last successful build, or everything when the project itself changed.

A rerun of an unchanged project also leaves out dbt's unit tests: they read fixed inputs, not the
warehouse, so their outcome is a function of the project files and dbt's version alone, and the
build that recorded the same fingerprint ran them and passed.

This is dbt's `state:modified+ source_status:fresher+` worked out with one query instead of a
`dbt source freshness` call (which costs as much as the rerun it saves). It must never leave out
a node whose inputs changed: when in doubt (no previous state, another dbt project, a changed
file, a dropped raw table) it selects everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tieout import db
from tieout.config import SAFE_LOADER
from tieout.paths import dbt_project_dir

# Everything that can change what dbt builds; target/ and logs/ are dbt's own output.
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "tests")
# A raw table's identity and how far its identity column has counted: any appended row moves
# it, a dropped and recreated table changes its oid, and reading it never scans the table.
WATERMARK_SQL = """
select
    tables.selector,
    to_regclass(tables.name)::oid::text || ':' || coalesce(
        pg_sequence_last_value(pg_get_serial_sequence(tables.name, '_seq'))::text, '-'
    )
from unnest(%(selectors)s::text[], %(tables)s::text[]) as tables (selector, name)
where to_regclass(tables.name) is not null
"""
LAST_STATE_SQL = """
select figures -> 'state'
from ops.stage_runs
where stage = 'transform' and status = 'success' and figures ? 'state'
order by finished_at desc
limit 1
"""


@dataclass
class Plan:
    """The selection for one run and the state a successful run records for the next."""

    select: list[str]
    reason: str
    state: dict[str, Any]
    fresher: list[str] = field(default_factory=list)
    same_project: bool = False  # the project files and dbt are those of the last build

    @property
    def exclude(self) -> list[str]:
        """What a rerun of the same project leaves out: unit tests (see the module doc)."""
        return ["resource_type:unit_test"] if self.same_project and self.select else []

    @property
    def nothing_to_do(self) -> bool:
        return self.reason == "nothing changed"


def project_fingerprint(project: Path | None = None) -> str:
    """sha256 over dbt's version and every file dbt reads for the graph (paths and contents)."""
    from dbt.version import __version__ as dbt_version

    project = project or dbt_project_dir()
    digest = hashlib.sha256(dbt_version.encode())
    for part in PROJECT_PARTS:
        root = project / part
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                digest.update(str(path.relative_to(project)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def raw_sources(project: Path | None = None) -> dict[str, str]:
    """dbt source selector (`source:tieout.crm.contacts`) -> the raw table it reads."""
    project = project or dbt_project_dir()
    found: dict[str, str] = {}
    for path in sorted((project / "models").rglob("*.yml")):
        text = path.read_text()
        if "sources:" not in text:  # parse only the files that can declare sources
            continue
        spec = yaml.load(text, Loader=SAFE_LOADER) or {}  # noqa: S506 - a safe loader
        for source in spec.get("sources") or []:
            schema = source.get("schema", source["name"])
            for table in source.get("tables") or []:
                identifier = table.get("identifier", table["name"])
                found[f"source:tieout.{source['name']}.{table['name']}"] = f"{schema}.{identifier}"
    return found


def raw_watermarks(url: str, sources: dict[str, str]) -> dict[str, str | None]:
    """Every raw table's watermark, in one query; None for a table that does not exist."""
    marks: dict[str, str | None] = dict.fromkeys(sources)
    with db.connect(url) as conn:
        found = conn.execute(
            WATERMARK_SQL, {"selectors": list(sources), "tables": list(sources.values())}
        ).fetchall()
    marks.update({selector: mark for selector, mark in found})
    return marks


def last_state(url: str) -> dict[str, Any] | None:
    """The state the last successful whole-project build recorded, if any."""
    with db.connect(url) as conn:
        row = conn.execute(LAST_STATE_SQL).fetchone()
    return row[0] if row and row[0] else None


def plan_rerun(url: str, as_of_date: str | None, everything: bool = False) -> Plan:
    """The nodes this run must build, given what changed since the last successful build."""
    watermarks = raw_watermarks(url, raw_sources())
    state: dict[str, Any] = {
        "fingerprint": project_fingerprint(),
        "watermarks": watermarks,
        "as_of_date": as_of_date or datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    previous = None if everything else last_state(url)
    if previous is None:
        return Plan([], "everything requested" if everything else "no previous build", state)
    if previous.get("fingerprint") != state["fingerprint"]:
        return Plan([], "dbt project changed", state)
    before = previous.get("watermarks") or {}
    fresher = [
        s for s, mark in state["watermarks"].items() if mark is None or before.get(s) != mark
    ]
    select = [f"{selector}+" for selector in fresher]
    if previous.get("as_of_date") != state["as_of_date"]:
        select.append("receivables_aging+")
    reason = "raw data changed" if select else "nothing changed"
    return Plan(select, reason, state, fresher, same_project=True)
