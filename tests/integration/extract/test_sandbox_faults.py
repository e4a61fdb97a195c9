"""Against the sandbox, each fault knob ends with every good record loaded exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tieout.extract.run import extract_stream
from tieout_sandbox import faults, server


@pytest.fixture
def knobs(sandbox: Any) -> Iterator[Any]:
    touched: list[str] = []

    def set_knobs(system: str, **values: Any) -> None:
        touched.append(system)
        server.set_faults(system, sandbox.directory, **values)

    yield set_knobs
    for system in touched:
        server.clear_faults(system, sandbox.directory)


def assert_exactly_once(
    conn: psycopg.Connection,
    sandbox: Any,
    source: str,
    stream: str,
    table: str,
    missing: frozenset[str] = frozenset(),
) -> None:
    keys = [row[0] for row in conn.execute(f'select _pk from raw."{source}__{stream}"')]
    assert len(keys) == len(set(keys)), "a record was loaded twice"
    assert set(keys) == sandbox.source_keys(source, table) - missing


def test_clean_run_then_rerun(conn: psycopg.Connection, sandbox: Any, fresh: Any) -> None:
    fresh("erp", "invoices")
    first = extract_stream("erp", "invoices", "faults-clean-1")
    assert first["total_diff"] == 0 and first["rows"] == first["api_total"]
    again = extract_stream("erp", "invoices", "faults-clean-2")
    assert again["rows"] == 0
    assert_exactly_once(conn, sandbox, "erp", "invoices", "invoices")


def test_5xx(conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any) -> None:
    fresh("erp", "sales_orders")
    knobs("erp", error_rate=0.3, seed=1)
    figures = extract_stream("erp", "sales_orders", "faults-5xx")
    assert figures["retries"] > 0 and figures["total_diff"] == 0
    assert_exactly_once(conn, sandbox, "erp", "sales_orders", "sales_orders")


def test_429_with_retry_after(
    conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any
) -> None:
    fresh("crm", "contacts")
    knobs("crm", rate_429=0.3, retry_after_seconds=1, seed=2)
    figures = extract_stream("crm", "contacts", "faults-429")
    assert figures["http_429"] > 0
    assert_exactly_once(conn, sandbox, "crm", "contacts", "contacts")


def test_timeouts(conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any) -> None:
    fresh("billing", "customers")
    knobs("billing", timeout_rate=0.25, timeout_seconds=2.0, seed=3)
    figures = extract_stream("billing", "customers", "faults-timeouts")
    assert figures["retries"] > 0
    assert_exactly_once(conn, sandbox, "billing", "customers", "customers")


def test_malformed_records_and_pages(
    conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any
) -> None:
    fresh("shop", "orders")
    knobs("shop", missing_key_rate=0.05, wrong_type_rate=0.1, broken_json_rate=0.2, seed=4)
    keys = sandbox.source_keys("shop", "orders")
    keyless = frozenset(k for k in keys if faults.stable_hit(4, "missing_key", k, 0.05))
    assert keyless
    figures = extract_stream("shop", "orders", "faults-malformed")
    assert figures["quarantined"] == len(keyless)
    assert figures["retries"] > 0  # truncated pages were fetched again
    assert_exactly_once(conn, sandbox, "shop", "orders", "orders", keyless)
    reasons = conn.execute(
        "select distinct reason from ops.quarantine where source = 'shop' and stream = 'orders'"
    ).fetchall()
    assert reasons == [("primary key field 'id' is missing or not a scalar",)]


def test_renamed_field(conn: psycopg.Connection, sandbox: Any, fresh: Any, knobs: Any) -> None:
    fresh("shop", "customers")
    extract_stream("shop", "customers", "faults-rename-1")
    knobs("shop", rename_field={"email": "email_address"})
    figures = extract_stream("shop", "customers", "faults-rename-2", full_refresh=True)
    assert figures["schema_changes"] == 2
    changes = conn.execute(
        "select field, change from ops.schema_changes where run_id = 'faults-rename-2' "
        "order by field"
    ).fetchall()
    assert changes == [("email", "missing"), ("email_address", "added")]
    # every record is a new version (its shape changed), none twice
    assert figures["rows"] == len(sandbox.source_keys("shop", "customers"))
    versions = conn.execute(
        'select _pk, count(*) from raw."shop__customers" group by _pk having count(*) <> 2'
    ).fetchall()
    assert versions == []
