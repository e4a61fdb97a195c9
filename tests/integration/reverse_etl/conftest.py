"""A warehouse database of its own and a fresh sandbox per test, with findings written by hand:
each test names the records it corrects, and the sandbox audit log shows what landed."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout_sandbox import SYSTEMS, credentials, faults, generate, server, storage

SCHEMA = """
create table if not exists canonical.customers (customer_id text primary key, name text,
    email text, phone text, street text, postcode text, city text, country text, vat_number text);
create table if not exists canonical.invoices (invoice_id text primary key, status text,
    amount text, currency text, due_at text);
"""
FILLER = """
delete from canonical.customers where customer_id !~ '^c[0-9]+$';
delete from canonical.invoices where invoice_id !~ '^i[0-9]+$';
insert into canonical.customers (customer_id)
    select 'c' || g from generate_series(1, 1000) g on conflict do nothing;
insert into canonical.invoices (invoice_id)
    select 'i' || g from generate_series(1, 1000) g on conflict do nothing;
"""
KEYS = {
    "customer": ("canonical.customers", "customer_id"),
    "invoice": ("canonical.invoices", "invoice_id"),
}


@pytest.fixture(scope="package")
def rev_url(
    new_warehouse: Callable[[str], ContextManager[str]],
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
) -> Iterator[str]:
    with new_warehouse("tieout_rev") as url:
        with psycopg.connect(url) as conn:
            conn.execute(SCHEMA)
            conn.execute(FILLER)
        with scoped_env({"TIEOUT_DATABASE_URL": url}):
            yield url


@dataclass
class Company:
    directory: Path
    url: str

    def records(self, system: str, table: str, limit: int) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.directory / f"{system}.sqlite")
        try:
            rows = conn.execute(
                f"select doc from {table} order by seq limit ?", (limit,)
            ).fetchall()
        finally:
            conn.close()
        return [json.loads(row[0]) for row in rows]

    def record(self, system: str, table: str, key: str) -> dict[str, Any]:
        conn = sqlite3.connect(self.directory / f"{system}.sqlite")
        try:
            row = conn.execute(f"select doc from {table} where pk = ?", (key,)).fetchone()
        finally:
            conn.close()
        return json.loads(row[0])

    def audit(self, system: str) -> list[dict[str, Any]]:
        return storage.read_audit(self.directory / f"{system}.sqlite")

    def applied(self, system: str) -> Counter[str]:
        """Applied writes per path: exactly once means every value is 1."""
        return Counter(row["path"] for row in self.audit(system) if row["applied"])

    def fault(self, system: str, **knobs: Any) -> None:
        server.set_faults(system, self.directory, **knobs)

    def finding(
        self,
        entity: str,
        system: str,
        field: str,
        record_key: str,
        value: str,
        currency: str | None = None,
        canonical_key: str | None = None,
        canonical_value: str | None = None,
    ) -> int:
        """An open value mismatch; the canonical row (`canonical_key`, default one per record)
        holds `canonical_value` (default `value`) for the field, as reconcile would have seen."""
        table, key = KEYS[entity]
        ref = canonical_key or f"{entity}-{record_key}"
        with psycopg.connect(self.url) as conn:
            conn.execute(
                f"""insert into {table} ({key}, {field}) values (%s, %s)
                    on conflict ({key}) do update set {field} = excluded.{field}""",
                (ref, value if canonical_value is None else canonical_value),
            )
            row = conn.execute(
                """insert into recon.findings (entity, system, kind, field, finding_key,
                       entity_ref, system_keys, canonical_value, currency,
                       first_seen_run_id, last_seen_run_id)
                   values (%s, %s, 'value_mismatch', %s, %s::jsonb, %s, %s::jsonb, %s, %s,
                           'setup', 'setup')
                   returning finding_id""",
                (
                    entity,
                    system,
                    field,
                    json.dumps({key: ref}),
                    ref,
                    json.dumps([record_key]),
                    value,
                    currency,
                ),
            ).fetchone()
        assert row
        return int(row[0])

    def validated(self, run_id: str, failing: str | None = None) -> None:
        """A build of canonical as it is now, then this run's validation of it (the results by
        hand, the binding and fingerprints by the validate stage's own function)."""
        from tieout.transform.builds import record_build
        from tieout.validate.fingerprints import record_validation

        record_build(f"build-for-{run_id}", "cli", None, self.url)
        with psycopg.connect(self.url) as conn:
            for entity in ("customer", "invoice"):
                conn.execute(
                    """insert into ops.validation_results (run_id, suite, expectation,
                           expectation_type, severity, entity, success)
                       values (%s, %s, 'rows exist', 'expect_table_row_count_to_be_between',
                               'critical', %s, %s)""",
                    (run_id, f"canonical.{entity}s", entity, entity != failing),
                )
        record_validation(run_id, self.url)

    def outbox(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.url) as conn:
            cur = conn.execute("select * from rev.outbox order by outbox_id")
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture
def company(rev_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Company]:
    with psycopg.connect(rev_url) as conn:
        conn.execute(
            "truncate rev.outbox, rev.skips, rev.decisions, recon.findings, recon.drift_runs,"
            " ops.validated_rows, ops.validations, ops.builds cascade"
        )
        conn.execute("delete from ops.validation_results")
        conn.execute(FILLER)
    generate.seed(tmp_path, scale=0.1, seed_value=5)
    faults.save_knobs(tmp_path, "billing", faults.knobs_from_dict("billing", {}))
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    server.up(tmp_path, ports=ports)
    for system, uri in credentials.sandbox_connections(tmp_path).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_TIEOUT_{system.upper()}", uri)
    try:
        yield Company(tmp_path, rev_url)
    finally:
        server.down(tmp_path)
