"""docker/postgres-init.sh on a fresh server lets the warehouse owner, no superuser and unable
to create roles, run every migration; each stage role then logs in with its own password."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tieout import db
from tieout.db import embedded, migrate

ROOT = Path(__file__).resolve().parents[3]
STAGE_PASSWORDS = {
    "WAREHOUSE_LOADER_PASSWORD": "tieout_loader",
    "WAREHOUSE_TRANSFORMER_PASSWORD": "tieout_transformer",
    "WAREHOUSE_VALIDATOR_PASSWORD": "tieout_validator",
    "WAREHOUSE_RECONCILER_PASSWORD": "tieout_reconciler",
    "WAREHOUSE_REVERSE_ETL_PASSWORD": "tieout_reverse_etl",
    "WAREHOUSE_FINANCE_PASSWORD": "tieout_finance",
}


@pytest.fixture
def fresh_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private embedded server stripped to what the postgres image starts with."""
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TIEOUT_DATABASE_URL", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("TIEOUT_EMBEDDED_PORT", str(sock.getsockname()[1]))
    server, _ = embedded.start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            for database in embedded.DATABASES:
                conn.execute(f'drop database if exists "{database}"')
            for role in db.ROLES.values():
                conn.execute(f"drop role if exists {role}")
        yield server.url("postgres")
    finally:
        embedded.destroy()


def test_owner_without_createrole_migrates_a_fresh_server(fresh_server: str) -> None:
    superuser = psycopg.conninfo.conninfo_to_dict(fresh_server)
    passwords = {
        name: secrets.token_urlsafe(16)
        for name in ["AIRFLOW_DB_PASSWORD", "WAREHOUSE_PASSWORD", *STAGE_PASSWORDS]
    }
    env = {
        **os.environ,
        **passwords,
        "PATH": str(Path(embedded.psql_path()).parent) + os.pathsep + os.environ["PATH"],
        "PGHOST": str(superuser["host"]),
        "PGPORT": str(superuser["port"]),
        "PGPASSWORD": str(superuser["password"]),
        "POSTGRES_USER": "postgres",
    }
    init = subprocess.run(
        ["bash", str(ROOT / "docker" / "postgres-init.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    for secret in passwords.values():
        assert secret not in init.stdout + init.stderr

    host = f"127.0.0.1:{superuser['port']}"
    owner = f"postgresql://tieout:{passwords['WAREHOUSE_PASSWORD']}@{host}/tieout"
    with psycopg.connect(owner) as conn:
        assert conn.execute(
            "select rolsuper, rolcreaterole from pg_roles where rolname = current_user"
        ).fetchone() == (False, False)
        applied = migrate.migrate(conn)
    assert applied == [f"{m.version}_{m.name}" for m in migrate.available()]
    with psycopg.connect(owner) as conn:
        assert migrate.migrate(conn) == []  # a rerun applies nothing and still grants

    def login(variable: str) -> psycopg.Connection:
        name = STAGE_PASSWORDS[variable]
        return psycopg.connect(
            f"postgresql://{name}:{passwords[variable]}@{host}/tieout", autocommit=True
        )

    with login("WAREHOUSE_LOADER_PASSWORD") as loader:
        loader.execute("create table raw.crm__contacts (_pk text)")
        loader.execute("insert into raw.crm__contacts values ('1')")
    with login("WAREHOUSE_TRANSFORMER_PASSWORD") as transformer:
        assert transformer.execute("select _pk from raw.crm__contacts").fetchall() == [("1",)]
        transformer.execute("create table canonical.customers as select 1 as customer_id")
    with login("WAREHOUSE_FINANCE_PASSWORD") as finance:
        assert finance.execute("select count(*) from canonical.customers").fetchone() == (1,)
        assert finance.execute("select count(*) from rev.outbox").fetchone() == (0,)
    with (
        login("WAREHOUSE_RECONCILER_PASSWORD") as reconciler,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        reconciler.execute("insert into rev.skips values ('r', 's', 'e', 'x')")


def test_a_missing_role_the_owner_cannot_create_is_named(fresh_server: str) -> None:
    """On a server whose roles predate 0060, the owner is told which role to create."""
    with psycopg.connect(fresh_server, autocommit=True) as conn:
        conn.execute("create role init_owner login password 'owner-pw'")
        conn.execute("create database init_wh owner init_owner")
        for name in ("tieout_loader", "tieout_transformer", "tieout_analyst", "tieout_finance"):
            conn.execute(f"create role {name} login")
    owner = psycopg.conninfo.make_conninfo(
        fresh_server, dbname="init_wh", user="init_owner", password="owner-pw"
    )
    with psycopg.connect(owner) as conn, pytest.raises(psycopg.errors.RaiseException) as caught:
        migrate.migrate(conn)
    assert "role tieout_validator does not exist and init_owner cannot create roles" in str(
        caught.value
    )
    assert "docker/postgres-init.sh" in (caught.value.diag.message_hint or "")
