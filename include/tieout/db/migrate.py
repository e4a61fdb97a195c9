"""Versioned, idempotent warehouse migrations: numbered SQL files applied once each.

Files are never edited after they ship; a change is a new file. A changed checksum
stops the run instead of silently diverging. After them, db/grants.sql (what each stage's
role may touch) is applied on every run, so a new table gets its grants there.
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
