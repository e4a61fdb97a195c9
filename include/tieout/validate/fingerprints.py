"""What a validation vouches for: the build it checked and a fingerprint (a hash per field) of
every canonical value reverse ETL may write, per row, in ops.validations / ops.validated_rows.

Reverse ETL compares canonical as it is with these fingerprints, so a value changed after the
validation (a manual UPDATE, a build nobody validated) is never written on the old verdict.
Nothing here changes canonical data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from tieout import db
from tieout.config import Config, load_config, load_validation


@dataclass(frozen=True)
class Written:
    """One entity's canonical table, its key and the fields reverse ETL may write."""

    entity: str
    table: str
    key: str
    fields: tuple[str, ...]


def written_fields(config: Config) -> list[Written]:
    """Per entity, every field some reverse ETL target may write (from reverse_etl.yml)."""
    fields: dict[str, set[str]] = {}
    for target in config.reverse_etl.targets:
        fields.setdefault(target.entity, set()).update(target.fields)
    return [
        Written(name, config.entities[name].table, config.entities[name].key, tuple(sorted(f)))
        for name, f in sorted(fields.items())
        if name in config.entities
    ]


def value_hash(column: str) -> str:
    """The SQL for one field's fingerprint: the same text for the same value, null kept apart."""
    return f"coalesce(left(md5(cast({column} as text)), 16), 'null')"


def columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    schema, _, name = table.partition(".")
    rows = conn.execute(
        """select column_name from information_schema.columns
           where table_schema = %s and table_name = %s""",
        (schema, name),
    ).fetchall()
    return {str(row[0]) for row in rows}


def fingerprint_sql(written: Written, present: set[str]) -> str | None:
    """`select record_key, fingerprint from <table>` for the fields the table has, or None
    when the table or its key is not there."""
    if written.key not in present:
        return None
    pairs = ", ".join(f"'{name}', {value_hash(name)}" for name in written.fields if name in present)
    return (
        f"select cast({written.key} as text) as record_key, "  # noqa: S608 - names from config
        f"jsonb_build_object({pairs}) as fingerprint "
        f"from {written.table} where {written.key} is not null"
    )


def current(conn: psycopg.Connection[Any], written: Written) -> str | None:
    """The fingerprint query of canonical as it is now (None when the table is not built)."""
    return fingerprint_sql(written, columns(conn, written.table))


def record_validation(
    run_id: str, url: str | None = None, config: Config | None = None
) -> str | None:
    """Bind this run's validation to the newest build and store the fingerprints it checked.

    Returns the build id (None when no build was ever recorded: then reverse ETL refuses)."""
    from tieout.transform.builds import latest_build

    config = config or load_config()
    with db.connect(url) as conn, conn.transaction():
        build = latest_build(conn)
        build_id = build[0] if build else None
        conn.execute("delete from ops.validations where run_id = %s", (run_id,))
        conn.execute(
            "insert into ops.validations (run_id, build_id) values (%s, %s)", (run_id, build_id)
        )
        for written in written_fields(config):
            query = current(conn, written)
            if query is None:
                continue
            conn.execute(
                f"""insert into ops.validated_rows (run_id, entity, record_key, fingerprint)
                    select %s, %s, record_key, fingerprint from ({query}) as now
                    on conflict do nothing""",  # noqa: S608 - names from config
                (run_id, written.entity),
            )
        prune(conn, config)
    return build_id


LAST_PASSING = """
select b.run_id from ops.validations as b
where not exists (
    select 1 from ops.validation_results as r
    where r.run_id = b.run_id and r.entity = %s and r.severity = 'critical' and not r.success)
order by b.validated_at desc limit 1
"""


def kept_runs(conn: psycopg.Connection[Any], config: Config | None = None) -> set[str]:
    """The validations whose fingerprints, GX results and Data Docs pages are kept: the newest
    validation.yml `keep_validations` and the last passing one of each written entity (the
    change-rate baseline)."""
    keep = load_validation().keep_validations
    kept = {
        str(row[0])
        for row in conn.execute(
            "select run_id from ops.validations order by validated_at desc limit %s", (keep,)
        )
    }
    for written in written_fields(config or load_config()):
        row = conn.execute(LAST_PASSING, (written.entity,)).fetchone()
        if row:
            kept.add(str(row[0]))
    return kept


def prune(conn: psycopg.Connection[Any], config: Config | None = None) -> int:
    """Drop the fingerprints of every validation `kept_runs` does not keep. Returns the rows
    removed."""
    kept = kept_runs(conn, config)
    cur = conn.execute(
        "delete from ops.validated_rows where not (run_id = any(%s))", (sorted(kept),)
    )
    return cur.rowcount
