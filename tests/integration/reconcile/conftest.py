"""Reconciliation cases: each folder under cases/ holds an entity spec (case.yml), input rows
(input/canonical.csv, input/by_system.csv) and the findings reconcile must produce."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tieout.config import Alerts, Entity

CASES = Path(__file__).parent / "cases"

SQL_TYPES = {
    "text": "text",
    "currency": "text",
    "money": "numeric",
    "integer": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}
FIXED = {"system": "text", "system_key": "text", "duplicate_rank": "integer"}


def column_types(entity: Entity, overrides: dict[str, str]) -> dict[str, str]:
    types = {column.strip(): "text" for column in entity.key.split(",")}
    types.update({name: SQL_TYPES[spec.type] for name, spec in entity.fields.items()})
    types.update(FIXED)
    types.update(overrides)
    return types


def load_table(conn: psycopg.Connection, relation: str, path: Path, types: dict[str, str]) -> None:
    """COPY a CSV into a fresh table: an unquoted empty cell is NULL, a quoted "" is ''."""
    with path.open() as handle:
        header = next(csv.reader(handle))
    columns = ", ".join(f"{name} {types.get(name, 'text')}" for name in header)
    conn.execute(f"create table {relation} ({columns})")
    with conn.cursor().copy(f"copy {relation} from stdin with (format csv, header true)") as copy:
        copy.write(path.read_bytes())


class Case:
    def __init__(self, folder: Path):
        self.folder = folder
        self.spec = yaml.safe_load((folder / "case.yml").read_text())
        self.entity = Entity.model_validate(self.spec["entity"])
        self.name = self.spec.get("name", folder.name)

    def expected(self) -> list[dict[str, str]]:
        with (self.folder / "expected_findings.csv").open() as handle:
            return list(csv.DictReader(handle))


@pytest.fixture
def load_case(conn: psycopg.Connection) -> Callable[[str], tuple[Case, dict[str, tuple[str, str]]]]:
    """Load a case's input into its own schema; returns the case and reconcile's relations."""

    def load(name: str) -> tuple[Case, dict[str, tuple[str, str]]]:
        case = Case(CASES / name)
        schema = f"case_{name}_{uuid.uuid4().hex[:6]}"
        conn.execute(f"create schema {schema}")
        for side in ("canonical", "by_system"):
            overrides = {**case.spec.get("columns", {}), **case.spec.get(f"{side}_columns", {})}
            types = column_types(case.entity, overrides)
            load_table(conn, f"{schema}.{side}", case.folder / "input" / f"{side}.csv", types)
        # reconcile reads as tieout_reconciler, as it reads canonical and intermediate
        conn.execute(f"grant usage on schema {schema} to tieout_reconciler")
        conn.execute(f"grant select on all tables in schema {schema} to tieout_reconciler")
        return case, {case.name: (f"{schema}.canonical", f"{schema}.by_system")}

    return load


def open_findings(conn: psycopg.Connection, entity: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        """select kind, system, field, coalesce(entity_ref, system_keys ->> 0, '') as ref,
                  canonical_value, system_value, money_impact, currency
           from recon.findings where entity = %s and status = 'open'""",
        (entity,),
    ).fetchall()
    names = (
        "kind",
        "system",
        "field",
        "ref",
        "canonical_value",
        "system_value",
        "money_impact",
        "currency",
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


NO_ALERTS = Alerts()
