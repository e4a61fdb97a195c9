"""The validation gate, bound to the build: reverse ETL writes only canonical values that a
validation of the current build passed, and holds any value changed since that validation.

It refuses (GateRefused, naming the build and the validation) rather than guess; it never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from tieout.config import Config
from tieout.transform.builds import latest_build
from tieout.validate.fingerprints import current, written_fields


class GateRefused(RuntimeError):
    """No validation passed the build canonical holds now: nothing may be planned or written."""


@dataclass(frozen=True)
class Binding:
    run_id: str
    build_id: str
    validated_at: datetime


def bound_validation(conn: psycopg.Connection[Any], run_id: str) -> Binding:
    """The validation of `run_id`, when it checked the newest build after that build was made."""
    build = latest_build(conn)
    found = conn.execute(
        "select build_id, validated_at from ops.validations where run_id = %s", (run_id,)
    ).fetchone()
    if build is None:
        raise GateRefused(
            "reverse ETL refused: no canonical build is recorded (ops.builds); run "
            "`tieout transform`, then `tieout validate`"
        )
    build_id, build_run, built_at = build
    now = f"build {build_id} (run {build_run}, built {built_at:%Y-%m-%d %H:%M:%S %Z})"
    if found is None:
        raise GateRefused(
            f"reverse ETL refused: canonical is {now}, and run {run_id} has no validation bound "
            "to a build; run `tieout validate` for this build first"
        )
    validated_build, validated_at = found
    if validated_build != build_id or validated_at < built_at:
        checked = f"build {validated_build}" if validated_build else "no recorded build"
        raise GateRefused(
            f"reverse ETL refused: canonical is {now}, but the validation found (run {run_id}, "
            f"{validated_at:%Y-%m-%d %H:%M:%S %Z}) checked {checked}; validate {build_id} "
            "before writing"
        )
    return Binding(run_id, build_id, validated_at)


def latest_validated_run(conn: psycopg.Connection[Any]) -> str | None:
    """The run whose validation checked the newest build (the newest such), else None."""
    build = latest_build(conn)
    if build is None:
        return None
    row = conn.execute(
        """select run_id from ops.validations where build_id = %s and validated_at >= %s
           order by validated_at desc limit 1""",
        (build[0], build[2]),
    ).fetchone()
    return str(row[0]) if row else None


@dataclass
class Changes:
    """One entity's written fields changed since the validation: per field, the keys and share."""

    entity: str
    table: str
    compared: int = 0
    keys: dict[str, set[str]] = field(default_factory=dict)

    def share(self, name: str) -> float:
        return len(self.keys.get(name, ())) / self.compared if self.compared else 1.0

    def reason(self, names: list[str], binding: Binding) -> str:
        parts = [
            f"{self.table}.{name} changed since validation on {self.share(name):.1%} of rows "
            f"({len(self.keys[name])} of {self.compared})"
            for name in names
        ]
        return (
            "; ".join(parts) + f" (validation run {binding.run_id} of build {binding.build_id}); "
            "the written value is not the validated one"
        )


def changes_since(
    conn: psycopg.Connection[Any], config: Config, binding: Binding
) -> dict[str, Changes]:
    """Entity -> which canonical values of written fields differ from what the validation saw
    (a row missing on either side counts as changed for every field)."""
    found: dict[str, Changes] = {}
    for written in written_fields(config):
        changes = Changes(written.entity, written.table)
        found[written.entity] = changes
        query = current(conn, written)
        if query is None:
            continue
        rows = conn.execute(
            f"""with cur as ({query}),
                     val as (select record_key, fingerprint from ops.validated_rows
                             where run_id = %(run)s and entity = %(entity)s)
                select coalesce(cur.record_key, val.record_key), f.name
                from cur full join val using (record_key)
                cross join unnest(%(fields)s::text[]) as f (name)
                where cur.fingerprint ->> f.name is distinct from val.fingerprint ->> f.name""",  # noqa: S608
            {"run": binding.run_id, "entity": written.entity, "fields": list(written.fields)},
        ).fetchall()
        total = conn.execute(
            f"""with cur as ({query})
                select count(*) from cur full join (
                    select record_key from ops.validated_rows
                    where run_id = %s and entity = %s) as val using (record_key)""",  # noqa: S608
            (binding.run_id, written.entity),
        ).fetchone()
        changes.compared = int(total[0]) if total else 0
        for key, name in rows:
            changes.keys.setdefault(str(name), set()).add(str(key))
    return found
