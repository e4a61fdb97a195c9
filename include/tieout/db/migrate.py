"""Versioned, idempotent warehouse migrations: numbered SQL files applied once each.

Files are never edited after they ship; a change is a new file. A changed checksum
stops the run instead of silently diverging. Every stage calls `require_current` first. After
the migrations, db/grants.sql (what each stage's role may touch) is applied on every run, so a
new table gets its grants there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from tieout import db

LOCK_KEY = 0x7469656F  # "tieo": one migrator at a time per database


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def grants() -> str:
    """The stage roles' grants, applied after the migrations on every run (idempotent)."""
    return (resources.files("tieout.db") / "grants.sql").read_text()


def available() -> list[Migration]:
    folder = resources.files("tieout.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: (m.version, m.name))


class MigrationError(RuntimeError):
    pass


class MigrationsPending(MigrationError):
    """The warehouse is behind this code and the stage's role may not migrate it."""


# whether this role may migrate: it owns the database (the embedded server, a single-role
# setup) or is a superuser
MAY_MIGRATE_SQL = """
select pg_has_role(d.datdba, 'MEMBER') or r.rolsuper, current_user
from pg_database as d, pg_roles as r
where d.datname = current_database() and r.rolname = current_user
"""
_current: set[str] = set()  # warehouses found up to date by this process


def pending(conn: psycopg.Connection[Any]) -> list[str]:
    """The migrations not yet applied to the connected warehouse.

    A role that may not read ops.schema_migrations cannot tell; it is taken as current (the
    owner's run migrates first) rather than stopping a stage for a grant it does not need.
    """
    row = conn.execute(
        """select case
               when to_regclass('ops.schema_migrations') is null then 'absent'
               when has_table_privilege('ops.schema_migrations', 'select') then 'readable'
               else 'hidden'
           end"""
    ).fetchone()
    found = row[0] if row else "absent"
    if found == "hidden":
        return []
    done = (
        {version for (version,) in conn.execute("select version from ops.schema_migrations")}
        if found == "readable"
        else set()
    )
    return [key for m in available() if (key := f"{m.version}_{m.name}") not in done]


def require_current(url: str | None = None) -> list[str]:
    """Make sure the warehouse has every migration before a stage touches it.

    Pending migrations are applied when this role owns the database; any other role (a
    stage's own role) stops with the command to run. Cheap: two small queries, and none
    at all once this process has found the warehouse current. Returns what it applied.
    """
    url = url or db.warehouse_url()
    if url in _current:
        return []
    applied: list[str] = []
    with db.connect(url) as conn:
        missing = pending(conn)
        if missing:
            row = conn.execute(MAY_MIGRATE_SQL).fetchone()
            may_migrate, role = (bool(row[0]), str(row[1])) if row else (False, "?")
            if not may_migrate:
                raise MigrationsPending(
                    f"the warehouse lacks {len(missing)} migration(s) ({', '.join(missing)}) "
                    f"and role {role!r} does not own it: run `tieout db migrate` as the "
                    "warehouse owner, then this command again"
                )
            conn.commit()
            applied = migrate(conn)
    _current.add(url)
    return applied


def migrate(conn: psycopg.Connection[Any] | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    own = conn is None
    conn = conn or db.connect()
    applied: list[str] = []
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute("create schema if not exists ops")
            conn.execute(
                """create table if not exists ops.schema_migrations (
                       version text primary key, name text not null, checksum text not null,
                       applied_at timestamptz not null default now())"""
            )
            done = dict(conn.execute("select version, checksum from ops.schema_migrations"))
            for migration in available():
                key = f"{migration.version}_{migration.name}"
                if key in done:
                    if done[key] != migration.checksum:
                        raise MigrationError(
                            f"migration {key} changed after it was applied; "
                            "add a new migration instead of editing a shipped one"
                        )
                    continue
                conn.execute(migration.sql)  # type: ignore[arg-type]
                conn.execute(
                    "insert into ops.schema_migrations (version, name, checksum) values (%s,%s,%s)",
                    (key, migration.name, migration.checksum),
                )
                applied.append(key)
            conn.execute(grants())  # type: ignore[arg-type]
    finally:
        if own:
            conn.close()
    return applied
