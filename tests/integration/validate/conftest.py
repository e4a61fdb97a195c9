"""A warehouse of its own for the validate tests: the transform tests' hand-written API records
loaded into raw.* and one real `dbt build`, so the suites are checked against what dbt makes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import psycopg
import pytest

from tieout.config import load_config
from tieout.extract.load import ensure_raw_table

RECORDS = Path(__file__).parents[1] / "transform" / "fixtures"
CANONICAL = ("customers", "products", "orders", "order_lines", "invoices", "payments")


def load_raw(url: str) -> None:
    keys = {
        f"{source.name}__{stream.name}": stream.primary_key
        for source in load_config().sources.values()
        for stream in source.streams
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for path in sorted(RECORDS.glob("*.json")):
            table = path.stem
            source, _, stream = table.partition("__")
            ensure_raw_table(conn, source, stream)
            for version in json.loads(path.read_text()):
                record = version["record"]
                text = json.dumps(record, sort_keys=True)
                conn.execute(
                    f"""insert into raw.{table} (_pk, _record, _record_hash, _extracted_at,
                            _run_id, _source_url)
                        values (%s, %s::jsonb, %s, %s, 'fixture', %s)""",
                    (
                        "|".join(str(record[k]) for k in keys[table]),
                        text,
                        hashlib.md5(text.encode()).hexdigest(),
                        version["extracted_at"],
                        f"fixture://{table}",
                    ),
                )


@pytest.fixture(scope="session")
def chain_url(new_warehouse: Callable[[str], ContextManager[str]]) -> Iterator[str]:
    """Raw fixtures plus a full dbt build in a database only these tests use."""
    from tieout.transform import build

    if not RECORDS.is_dir():
        pytest.skip("the transform fixtures are not there")
    with new_warehouse("tieout_validate") as url:
        load_raw(url)
        build(run_id="validate__build", full_refresh=True, url=url, as_of_date="2026-01-31")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema clean")
            for table in CANONICAL:
                conn.execute(f"create table clean.{table} as select * from canonical.{table}")
        yield url


@pytest.fixture(scope="session")
def restore() -> Callable[[str], None]:
    """Put the canonical tables back as dbt built them and drop the corrupt raw rows."""
    return _restore


def _restore(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in CANONICAL:
            conn.execute(f"truncate canonical.{table}")
            conn.execute(f"insert into canonical.{table} select * from clean.{table}")
        conn.execute("delete from raw.erp__invoices where _run_id = 'corrupt'")
