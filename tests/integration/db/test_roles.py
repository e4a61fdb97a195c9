"""Each reader role reads what DESIGN.md grants it and is refused the rest."""

from __future__ import annotations

import psycopg
import pytest

SCHEMAS = ["raw", "staging", "intermediate", "canonical", "finance", "recon", "rev", "ops"]

CAN_READ = {
    "tieout_loader": {"raw", "ops"},
    "tieout_transformer": {"raw", "staging", "intermediate", "canonical", "finance"},
    "tieout_analyst": {"canonical", "finance"},
    "tieout_finance": {"canonical", "finance", "recon"},
}


@pytest.fixture(scope="module")
def probe_tables(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(f"create table if not exists {schema}.role_probe (x int)")
            conn.execute(f"insert into {schema}.role_probe values (1)")


def can_select(warehouse_url: str, role: str, schema: str) -> bool:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(f"set role {role}")
        try:
            conn.execute(f"select x from {schema}.role_probe").fetchall()
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


@pytest.mark.parametrize("role", sorted(CAN_READ))
@pytest.mark.parametrize("schema", SCHEMAS)
def test_role_reads_only_its_schemas(
    warehouse_url: str, probe_tables: None, role: str, schema: str
) -> None:
    assert can_select(warehouse_url, role, schema) is (schema in CAN_READ[role])


@pytest.mark.parametrize("role", ["tieout_analyst", "tieout_finance"])
def test_readers_cannot_write(warehouse_url: str, probe_tables: None, role: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(f"set role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into canonical.role_probe values (2)")


def test_loader_writes_raw_but_not_canonical(warehouse_url: str, probe_tables: None) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("set role tieout_loader")
        conn.execute("insert into raw.role_probe values (3)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into canonical.role_probe values (3)")
