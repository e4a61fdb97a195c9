"""Each role logs in as itself, reads and writes what db/grants.sql gives it, and is refused
the rest; tables a stage creates are its own."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tieout import db

SCHEMAS = ["raw", "staging", "intermediate", "canonical", "finance", "recon", "rev", "ops"]
STAGES = ["loader", "transformer", "validator", "reconciler", "reverse_etl"]

CAN_READ = {
    "loader": {"raw"},
    "transformer": {"raw", "staging", "intermediate", "canonical", "finance"},
    "validator": {"raw", "canonical", "finance"},
    "reconciler": {"intermediate", "canonical", "finance", "recon", "rev"},
    "reverse_etl": {"canonical", "finance", "recon", "rev"},
    "analyst": {"canonical", "finance"},
    "finance": {"canonical", "finance", "recon", "rev"},
}
# rows in tables the migrations made (role_probe stands for them)
CAN_WRITE = {
    "loader": {"raw"},
    "transformer": {"staging", "intermediate", "canonical", "finance"},
    "validator": set(),
    "reconciler": {"recon"},
    "reverse_etl": {"rev"},
}
# new tables, which then belong to the stage
CAN_CREATE = {
    "loader": {"raw"},
    "transformer": {"staging", "intermediate", "canonical", "finance"},
    "validator": set(),
    "reconciler": set(),
    "reverse_etl": set(),
}
# ops tables a stage may add rows to; everything else in ops is refused
OPS_WRITES = {
    "loader": {
        "stage_runs",
        "sync_state",
        "quarantine",
        "stream_fields",
        "schema_changes",
        "extract_runs",
        "request_budget",
        "integration_metrics",
        "webhook_events",
        "source_failures",
    },
    "transformer": {"stage_runs", "builds"},
    "validator": {
        "stage_runs",
        "validation_results",
        "validations",
        "validated_rows",
        "validation_baselines",
    },
    "reconciler": {"stage_runs", "integration_health"},
    "reverse_etl": {"stage_runs", "integration_metrics"},
}


@pytest.fixture(scope="module")
def probe_tables(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(f"create table if not exists {schema}.role_probe (x int)")
            conn.execute(f"insert into {schema}.role_probe values (1)")


@pytest.fixture
def as_role(warehouse_url: str) -> Iterator[object]:
    opened: list[psycopg.Connection] = []

    def open_as(role: str) -> psycopg.Connection:
        connection = db.connect(warehouse_url, role=role, autocommit=True)
        opened.append(connection)
        return connection

    yield open_as
    for connection in opened:
        connection.close()


def refused(conn: psycopg.Connection, statement: str) -> bool:
    try:
        conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize("role", sorted(CAN_READ))
def test_role_logs_in_as_itself(as_role, role: str) -> None:  # type: ignore[no-untyped-def]
    conn = as_role(role)
    assert conn.execute("select current_user, session_user").fetchone() == (
        db.ROLES[role],
        db.ROLES[role],
    )
    superuser, createrole, createdb = conn.execute(
        "select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user"
    ).fetchone()
    assert (superuser, createrole, createdb) == (False, False, False)


@pytest.mark.parametrize("role", sorted(CAN_READ))
@pytest.mark.parametrize("schema", SCHEMAS)
def test_role_reads_only_its_schemas(as_role, probe_tables: None, role: str, schema: str) -> None:  # type: ignore[no-untyped-def]
    readable = not refused(as_role(role), f"select x from {schema}.role_probe")
    assert readable is (schema in CAN_READ[role])


@pytest.mark.parametrize("role", STAGES)
@pytest.mark.parametrize("schema", SCHEMAS)
def test_stage_writes_only_its_schemas(as_role, probe_tables: None, role: str, schema: str) -> None:  # type: ignore[no-untyped-def]
    conn = as_role(role)
    wrote = not refused(conn, f"insert into {schema}.role_probe values (2)")
    assert wrote is (schema in CAN_WRITE[role])
    assert refused(conn, f"drop table {schema}.role_probe"), "only the owner drops its tables"


@pytest.mark.parametrize("role", STAGES)
@pytest.mark.parametrize("schema", [*SCHEMAS, "public"])
def test_stage_creates_tables_only_in_its_schemas_and_owns_them(
    as_role,  # type: ignore[no-untyped-def]
    role: str,
    schema: str,
) -> None:
    conn = as_role(role)
    table = f"{schema}.made_by_{role}"
    made = not refused(conn, f"create table {table} (x int)")
    assert made is (schema in CAN_CREATE[role])
    if made:
        owner = conn.execute(
            "select pg_get_userbyid(relowner) from pg_class where oid = %s::regclass", (table,)
        ).fetchone()
        assert owner == (db.ROLES[role],)
        conn.execute(f"drop table {table}")


@pytest.mark.parametrize("role", STAGES)
def test_stage_writes_only_its_ops_tables(as_role, role: str) -> None:  # type: ignore[no-untyped-def]
    conn = as_role(role)
    writable = {
        name
        for (name,) in conn.execute(
            """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = 'ops' and c.relkind in ('r', 'p') and c.relname <> 'role_probe'
                 and has_table_privilege(c.oid, 'insert')"""
        )
    }
    assert writable == OPS_WRITES[role]
    assert refused(conn, "insert into ops.schema_migrations values ('9999_x', 'x', 'x')")


@pytest.mark.parametrize("role", STAGES)
def test_only_validate_makes_tables_in_validate_scope(as_role, role: str) -> None:  # type: ignore[no-untyped-def]
    """validate_scope holds the changed rows and row hashes of incremental validation."""
    conn = as_role(role)
    made = not refused(conn, f"create unlogged table validate_scope.made_by_{role} (x int)")
    assert made is (role == "validator")
    if made:
        conn.execute(f"drop table validate_scope.made_by_{role}")


def test_no_stage_can_make_schemas_or_roles(as_role) -> None:  # type: ignore[no-untyped-def]
    for role in STAGES:
        conn = as_role(role)
        assert refused(conn, "create schema role_probe_schema"), role
        assert refused(conn, "create role role_probe_role"), role


def test_loader_tables_are_read_by_dbt_and_validate(as_role) -> None:  # type: ignore[no-untyped-def]
    """Default privileges follow a table the loader makes, as extract does each new stream."""
    loader = as_role("loader")
    loader.execute("create table raw.probe__stream (_pk text)")
    loader.execute("insert into raw.probe__stream values ('a')")
    try:
        for role in ("transformer", "validator"):
            assert as_role(role).execute("select _pk from raw.probe__stream").fetchall() == [("a",)]
        assert refused(as_role("reconciler"), "select _pk from raw.probe__stream")
    finally:
        loader.execute("drop table raw.probe__stream")


def test_transformer_tables_are_read_by_their_readers(as_role) -> None:  # type: ignore[no-untyped-def]
    transformer = as_role("transformer")
    transformer.execute("create table canonical.probe_entity as select 1 as id")
    try:
        for role in ("validator", "reconciler", "reverse_etl", "analyst", "finance"):
            assert as_role(role).execute("select id from canonical.probe_entity").fetchall() == [
                (1,)
            ]
        assert refused(as_role("loader"), "select id from canonical.probe_entity")
    finally:
        transformer.execute("drop table canonical.probe_entity")


def test_finance_reads_what_reverse_etl_did(as_role, conn) -> None:  # type: ignore[no-untyped-def]
    """0050 granted SELECT on rev's tables but no USAGE on rev: finance could read none."""
    finance = as_role("finance")
    for table in ("rev.outbox", "rev.skips"):
        # every row the owner sees (other tests of the session may have written some)
        count = f"select count(*) from {table}"
        assert finance.execute(count).fetchone() == conn.execute(count).fetchone(), table
    assert refused(
        finance, "insert into rev.skips (run_id, system, entity, reason) values ('r','s','e','x')"
    )


def test_stage_cannot_log_in_with_a_wrong_password_and_is_told_what_to_set(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_WAREHOUSE_LOADER", "postgresql://tieout_loader:not-its-password@x/y"
    )
    url = db.role_url("loader", warehouse_url)
    try:
        with db.connect(url):
            pass
    except db.DatabaseUnreachable as exc:
        message = str(exc)
    else:  # a server that trusts local logins (CI's) takes any password
        pytest.skip("this server does not check passwords")
    assert "tieout_loader" in message
    assert "AIRFLOW_CONN_TIEOUT_WAREHOUSE_LOADER" in message
    assert "not-its-password" not in message


OWN_STAGES = {
    "loader": ["extract", "extract:crm.contacts"],
    "transformer": ["transform"],
    "validator": ["validate", "validate:customer"],
    "reconciler": ["reconcile", "report"],
    "reverse_etl": ["reverse_etl"],
}


@pytest.mark.parametrize("role", STAGES)
def test_stage_records_only_its_own_stage_runs(as_role, role: str) -> None:  # type: ignore[no-untyped-def]
    conn = as_role(role)
    run_id = f"roles-{role}"
    upsert = """insert into ops.stage_runs (run_id, stage, status) values (%s, %s, 'running')
                on conflict (run_id, stage) do update set status = 'success'"""
    for stage in OWN_STAGES[role]:
        conn.execute(upsert, (run_id, stage))
        conn.execute(upsert, (run_id, stage))  # a rerun updates its own row
    for other in sorted(
        {s for stages in OWN_STAGES.values() for s in stages} - set(OWN_STAGES[role])
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(upsert, (run_id, other))
    seen = conn.execute("select count(*) from ops.stage_runs where run_id = %s", (run_id,))
    assert seen.fetchone() == (len(OWN_STAGES[role]),)
    # every stage reads the others' rows (the report and the rerun plan do)
    assert as_role("loader").execute(
        "select count(*) from ops.stage_runs where run_id = %s", (run_id,)
    ).fetchone() == (len(OWN_STAGES[role]),)
    # and cannot touch them: an update of another stage's rows finds none
    as_role("transformer").execute(upsert, (f"{run_id}-other", "transform"))
    if role != "transformer":
        changed = conn.execute(
            "update ops.stage_runs set status = 'failed' where run_id = %s", (f"{run_id}-other",)
        )
        assert changed.rowcount == 0
