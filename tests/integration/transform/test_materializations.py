"""How tieout's models materialize: dbt-postgres's own table, incremental and snapshot
materializations with tieout's project config (on_schema_change='fail', comments, post-hooks),
and tieout's incremental strategy 'diff' (dbt_project/macros/incremental_diff.sql), run by real
dbt against PostgreSQL on a two-model project of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tieout.paths import dbt_project_dir
from tieout.transform.runner import DbtError, run_dbt

# the models' on_schema_change is tieout's, read from its dbt_project.yml
ON_SCHEMA_CHANGE = yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text())["models"][
    "tieout"
]["+on_schema_change"]
PROJECT = f"""
name: materializations
version: "1.0.0"
config-version: 2
profile: tieout
models:
  materializations:
    +schema: mat
    +materialized: table
    +persist_docs: {{relation: true, columns: true}}
    +on_schema_change: {ON_SCHEMA_CHANGE}
"""
DOCS = """
version: 2
models:
  - name: accounts
    description: Every account's balance.
    columns:
      - name: account_id
        description: The account's key.
      - name: not_a_column
        description: Documented but not in the table; must not break the build.
  - name: account_totals
    description: One row per account, rebuilt whole.
"""
ACCOUNTS = """
{{ config(materialized='incremental', unique_key='account_id',
          post_hook="insert into mat.hooks select '{{ this.identifier }}', now()") }}
select account_id, balance{extra}
from (values {values}) as source (account_id, balance)
{% if is_incremental() %} where account_id >= {since} {% endif %}
"""
TOTALS = """
{{ config(indexes=[{'columns': ['account_id'], 'unique': true}]) }}
select account_id, sum(balance) as balance from {{ ref('accounts') }} group by account_id
"""
# the diff strategy's model returns its whole table; the key has two columns, as in the
# by-system models, and a value may be null
LEDGER = """
{{ config(materialized='incremental', incremental_strategy='diff', {config}) }}
select system, system_key, amount::numeric as amount, note
from (values {values}) as source (system, system_key, amount, note)
"""


@pytest.fixture
def project(tmp_path: Path, small_project: Callable[[Path, str], Path]) -> Path:
    root = small_project(tmp_path / "project", PROJECT)
    (root / "models" / "docs.yml").write_text(DOCS)
    (root / "models" / "account_totals.sql").write_text(TOTALS)
    return root


@pytest.fixture
def url(new_warehouse: Callable[..., Any]) -> Iterator[str]:
    with new_warehouse("tieout_test_materializations") as fresh:
        with psycopg.connect(fresh, autocommit=True) as conn:
            conn.execute("create schema mat")
            conn.execute("create table mat.hooks (model text, at timestamptz)")
            # dbt runs as tieout_transformer: this schema gets what its own layers get
            conn.execute("grant usage, create on schema mat to tieout_transformer")
            conn.execute("grant insert, select on mat.hooks to tieout_transformer")
        yield fresh


def write_accounts(project: Path, values: str, since: int = 0, extra: str = "") -> None:
    model = ACCOUNTS.replace("{values}", values).replace("{since}", str(since))
    (project / "models" / "accounts.sql").write_text(model.replace("{extra}", extra))


KEY = "unique_key=['system', 'system_key']"


def write_ledger(project: Path, values: str, config: str = KEY) -> None:
    if not (project / "models" / "accounts.sql").exists():  # account_totals reads it
        write_accounts(project, "(1, 10)")
    model = LEDGER.replace("{values}", values).replace("{config}", config)
    (project / "models" / "ledger.sql").write_text(model)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def build(project: Path, url: str, *args: str) -> dict[str, Any]:
    result = run_dbt(["build", *args], url=url, project_dir=project)
    return {n["unique_id"].rsplit(".", 1)[-1]: n for n in result.nodes}


def refusal(project: Path, url: str, *args: str) -> str:
    """The message of the build that must stop."""
    with pytest.raises(DbtError) as failure:
        build(project, url, *args)
    return str(failure.value)


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def test_first_build_leaves_rows_indexes_comments_and_hooks(project: Path, url: str) -> None:
    write_accounts(project, "(1, 10), (2, 20), (3, 30)")
    nodes = build(project, url)
    assert nodes["accounts"]["rows_affected"] == 3
    assert nodes["account_totals"]["rows_affected"] == 3
    assert rows(url, "select * from mat.accounts order by 1") == [(1, 10), (2, 20), (3, 30)]
    assert rows(
        url, "select indexdef like '%UNIQUE%' from pg_indexes where tablename = 'account_totals'"
    ) == [(True,)]
    assert rows(
        url,
        "select obj_description('mat.accounts'::regclass), "
        "col_description('mat.accounts'::regclass, 1), "
        "obj_description('mat.account_totals'::regclass)",
    ) == [("Every account's balance.", "The account's key.", "One row per account, rebuilt whole.")]
    assert rows(url, "select model from mat.hooks") == [("accounts",)]
    # nothing left under the temporary and backup names
    assert rows(url, "select count(*) from pg_class where relname like '%dbt_%'") == [(0,)]

    # a rebuild of the table keeps its index and comments
    build(project, url, "--select", "account_totals")
    assert rows(url, "select obj_description('mat.account_totals'::regclass)") == [
        ("One row per account, rebuilt whole.",)
    ]
    assert rows(url, "select count(*) from pg_indexes where tablename = 'account_totals'") == [(1,)]


def test_incremental_run_replaces_rows_by_unique_key_and_reports_them(
    project: Path, url: str
) -> None:
    write_accounts(project, "(1, 10), (2, 20), (3, 30)")
    build(project, url)
    write_accounts(project, "(1, 99), (2, 21), (3, 31), (4, 40)", since=2)
    nodes = build(project, url)
    assert nodes["accounts"]["rows_affected"] == 3  # keys 2, 3 replaced and 4 added; 1 untouched
    assert rows(url, "select * from mat.accounts order by 1") == [
        (1, 10),
        (2, 21),
        (3, 31),
        (4, 40),
    ]
    assert rows(url, "select balance from mat.account_totals where account_id = 4") == [(40,)]
    assert rows(url, "select count(*) from mat.hooks") == [(2,)]


def test_changed_columns_stop_the_run_and_touch_nothing(project: Path, url: str) -> None:
    assert ON_SCHEMA_CHANGE == "fail"
    write_accounts(project, "(1, 10), (2, 20)")
    build(project, url)
    write_accounts(project, "(1, 11), (2, 21)", extra=", 'EUR' as currency")
    message = refusal(project, url, "--select", "accounts")
    assert "the columns of accounts changed (source columns not in target: currency)" in message
    assert "tieout transform --full-refresh --select accounts" in message
    assert rows(url, "select * from mat.accounts order by 1") == [(1, 10), (2, 20)]

    build(project, url, "--full-refresh", "--select", "accounts")
    assert rows(url, "select * from mat.accounts order by 1") == [(1, 11, "EUR"), (2, 21, "EUR")]


SNAPSHOT = """
version: 2
snapshots:
  - name: accounts_history
    relation: ref('accounts')
    config:
      schema: mat
      unique_key: account_id
      strategy: check
      check_cols: [balance]
      hard_deletes: invalidate
"""


def test_snapshot_closes_changed_and_deleted_versions_and_takes_new_columns(
    project: Path, url: str
) -> None:
    (project / "snapshots").mkdir()
    (project / "snapshots" / "history.yml").write_text(SNAPSHOT)
    model = project / "models" / "accounts.sql"
    write_accounts(project, "(1, 10), (2, 20), (3, 30)")
    assert build(project, url)["accounts_history"]["rows_affected"] == 3
    assert build(project, url)["accounts_history"]["rows_affected"] == 0  # nothing changed

    # account 2 changes, 3 disappears, 4 is new, and the source gains a column
    write_accounts(project, "(1, 10), (2, 25), (4, 40)", extra=", 'EUR' as currency")
    edit(model, "{% if is_incremental() %}", "{% if false %}")
    nodes = build(project, url, "--full-refresh", "--select", "accounts")
    assert nodes["accounts"]["rows_affected"] == 3
    nodes = build(project, url, "--select", "accounts_history")
    assert nodes["accounts_history"]["rows_affected"] == 2  # the new version of 2, and 4
    history = rows(
        url,
        "select account_id, balance, currency, dbt_valid_to is null from mat.accounts_history "
        "order by account_id, dbt_valid_from",
    )
    assert history == [
        (1, 10, None, True),
        (2, 20, None, False),
        (2, 25, "EUR", True),
        (3, 30, None, False),  # deleted at the source: its version is closed, not removed
        (4, 40, "EUR", True),
    ]


def ledger_rows(url: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each row of mat.ledger by key: its amount, note, and where and by which transaction it
    was written (ctid, xmin): a row left untouched keeps both."""
    found = rows(
        url, "select system, system_key, amount, note, ctid::text, xmin::text from mat.ledger"
    )
    return {(r[0], r[1]): r[2:] for r in found}


def test_diff_deletes_replaces_and_inserts_only_the_difference(project: Path, url: str) -> None:
    write_ledger(
        project,
        "('erp', 'A', 1.0, 'kept'), ('erp', 'B', 2, null), ('erp', 'C', 3, 'changes'), "
        "('crm', 'A', 4, 'vanishes'), ('crm', 'B', 5, null)",
    )
    assert build(project, url, "--select", "ledger")["ledger"]["rows_affected"] == 5
    before = ledger_rows(url)

    # erp A is equal by value (1.00 = 1.0), erp B keeps its null; erp C's note and crm B's
    # amount change; crm A is gone; shop A is new
    write_ledger(
        project,
        "('erp', 'A', 1.00, 'kept'), ('erp', 'B', 2, null), ('erp', 'C', 3, 'changed'), "
        "('crm', 'B', 6, null), ('shop', 'A', 7, 'new')",
    )
    nodes = build(project, url, "--select", "ledger")
    assert nodes["ledger"]["rows_affected"] == 3  # the two changed rows and the new one
    after = ledger_rows(url)
    assert {key: row[:2] for key, row in after.items()} == {
        ("erp", "A"): (1, "kept"),
        ("erp", "B"): (2, None),
        ("erp", "C"): (3, "changed"),
        ("crm", "B"): (6, None),
        ("shop", "A"): (7, "new"),
    }
    for untouched in (("erp", "A"), ("erp", "B")):
        assert after[untouched] == before[untouched], untouched  # same ctid, same xmin
    for written in (("erp", "C"), ("crm", "B")):
        assert after[written][3] != before[written][3], written  # a new version of the row
    assert after[("shop", "A")][3] == after[("erp", "C")][3]  # in the same transaction

    # nothing changed: nothing written
    nodes = build(project, url, "--select", "ledger")
    assert nodes["ledger"]["rows_affected"] == 0
    assert ledger_rows(url) == after
    # the model's temporary table is gone with its transaction
    assert rows(url, "select count(*) from pg_class where relname like 'ledger__dbt%'") == [(0,)]


def test_diff_stops_on_changed_columns(project: Path, url: str) -> None:
    write_ledger(project, "('erp', 'A', 1, 'x')")
    build(project, url, "--select", "ledger")
    edit(
        project / "models" / "ledger.sql", "amount, note\nfrom", "amount, note, 1 as version\nfrom"
    )
    message = refusal(project, url, "--select", "ledger")
    assert "the columns of ledger changed (source columns not in target: version)" in message
    assert rows(url, "select system, system_key, amount, note from mat.ledger") == [
        ("erp", "A", 1, "x")
    ]


@pytest.mark.parametrize(
    ("config", "refused"),
    [
        (KEY + ", incremental_predicates=['1 = 1']", "'diff' takes no incremental_predicates"),
        ("", "'diff' needs a unique_key"),
    ],
)
def test_what_diff_does_not_do_is_refused_by_name(
    project: Path, url: str, config: str, refused: str
) -> None:
    write_ledger(project, "('erp', 'A', 1, 'x')")
    build(project, url, "--select", "ledger")
    write_ledger(project, "('erp', 'A', 2, 'x')", config=config)
    message = refusal(project, url, "--select", "ledger")
    assert refused in message and "model.materializations.ledger" in message
    assert rows(url, "select amount from mat.ledger") == [(1,)]
