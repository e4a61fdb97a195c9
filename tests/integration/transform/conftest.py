"""Fixtures for the transform tests: raw.* filled from hand-written API records, one dbt build
per session shared by every test, and a helper that appends new record versions like extract."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout.config import load_config

FIXTURES = Path(__file__).parent / "fixtures"

RAW_TABLE = """
create table if not exists raw.{table} (
    _seq bigint generated always as identity,
    _pk text not null,
    _record jsonb not null,
    _record_hash text not null,
    _extracted_at timestamptz not null,
    _run_id text not null,
    _source_url text,
    _deleted boolean not null default false
)
"""


def primary_keys() -> dict[str, list[str]]:
    config = load_config()
    return {
        f"{source.name}__{stream.name}": stream.primary_key
        for source in config.sources.values()
        for stream in source.streams
    }


def append_versions(url: str, table: str, versions: list[dict[str, Any]], run_id: str) -> None:
    """Append record versions to raw.<table> exactly as extract would (no update, no delete)."""
    keys = primary_keys()[table]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RAW_TABLE.format(table=table))
        for version in versions:
            record = version["record"]
            text = json.dumps(record, sort_keys=True)
            conn.execute(
                f"insert into raw.{table} "
                "(_pk, _record, _record_hash, _extracted_at, _run_id, _source_url) "
                "values (%s, %s::jsonb, %s, %s, %s, %s)",
                (
                    "|".join(str(record[k]) for k in keys),
                    text,
                    hashlib.md5(text.encode()).hexdigest(),
                    version["extracted_at"],
                    run_id,
                    f"fixture://{table}",
                ),
            )


def load_fixtures(url: str) -> dict[str, int]:
    counts = {}
    for path in sorted(FIXTURES.glob("*.json")):
        versions = json.loads(path.read_text())
        append_versions(url, path.stem, versions, run_id="fixture")
        counts[path.stem] = len(versions)
    return counts


@pytest.fixture(scope="session")
def raw_loaded(new_warehouse: Callable[..., Any], warehouse_url: str) -> Iterator[str]:
    """The raw fixtures in a database of their own: other suites' raw rows never leak in."""
    with new_warehouse("tieout_test_transform") as url:
        load_fixtures(url)
        yield url


@pytest.fixture(scope="session")
def built(raw_loaded: str) -> Iterator[dict[str, Any]]:
    """One full `dbt build` over the fixtures, shared by the whole session."""
    from tieout.transform import build

    figures = build(run_id="test__full", full_refresh=True, url=raw_loaded, as_of_date="2026-01-31")
    yield figures


@pytest.fixture(scope="session")
def append_raw(raw_loaded: str) -> Callable[..., None]:
    """Append record versions to raw.<table> like extract does."""

    def append(table: str, versions: list[dict[str, Any]], run_id: str) -> None:
        append_versions(raw_loaded, table, versions, run_id)

    return append


@pytest.fixture(scope="session")
def sql(raw_loaded: str) -> Callable[..., list[tuple[Any, ...]]]:
    """Run one query on the test warehouse and return its rows."""

    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(raw_loaded) as conn:
            return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]

    return run


@pytest.fixture
def small_project() -> Callable[[Path, str], Path]:
    """Makes a dbt project of its own under a directory: tieout's profile, its diff strategy and
    the macros its models' materializations dispatch to, no models yet (the materialization
    tests write theirs)."""
    import shutil

    from tieout.paths import dbt_project_dir

    def make(root: Path, dbt_project_yml: str) -> Path:
        (root / "models").mkdir(parents=True)
        (root / "macros").mkdir()
        (root / "dbt_project.yml").write_text(dbt_project_yml)
        shutil.copy(dbt_project_dir() / "profiles.yml", root / "profiles.yml")
        for macro in ("incremental_diff.sql", "persist_docs.sql", "generate_schema_name.sql"):
            shutil.copy(dbt_project_dir() / "macros" / macro, root / "macros")
        return root

    return make
