"""tieout's own table and incremental materializations (dbt_project/macros/materializations/),
run by real dbt on a two-model project of their own: what dbt's stock ones leave behind (the
rows, indexes, comments, hooks), delete+insert on the unique key, and a clear stop when an
incremental model's columns no longer match its table."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout.transform.runner import DbtError, run_dbt

PROJECT = """
name: materializations
version: "1.0.0"
config-version: 2
profile: tieout
models:
  materializations:
    +schema: mat
    +materialized: table
    +persist_docs: {relation: true, columns: true}
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
    # nothing left under the temporary names
    assert rows(url, "select count(*) from pg_class where relname like '%dbt_tmp%'") == [(0,)]


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
    # target/run/ holds every statement each node sent (dbt's own writes only the first)
    ran = project / "target" / "run" / "materializations" / "models"
    accounts = (ran / "accounts.sql").read_text()
    assert "create temporary table" in accounts
    assert "delete from" in accounts and "insert into" in accounts
    assert "insert into mat.hooks" in accounts
    totals = (ran / "account_totals.sql").read_text()
    assert re.search(r"create\s+table", totals)
    assert "rename to" in totals


def test_changed_columns_stop_the_run_and_touch_nothing(project: Path, url: str) -> None:
    write_accounts(project, "(1, 10), (2, 20)")
    build(project, url)
    write_accounts(project, "(1, 11), (2, 21)", extra=", 'EUR' as currency")
    message = refusal(project, url)
    assert "columns of accounts changed" in message
    assert "currency" in message
    assert "--full-refresh --select accounts" in message
    assert rows(url, "select * from mat.accounts order by 1") == [(1, 10), (2, 20)]

    build(project, url, "--full-refresh")
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


@pytest.mark.parametrize(
    ("config", "first_run_is_dbts", "refused"),
    [
        (
            "strategy: timestamp\n      updated_at: balance",
            False,  # refused before any run
            "strategy 'timestamp' is not supported by tieout's snapshot",
        ),
        (
            "strategy: check\n      check_cols: all",
            True,  # a check snapshot's first run is dbt's; later runs are tieout's
            "needs check_cols as a list of columns",
        ),
    ],
)
def test_what_the_snapshot_does_not_do_is_refused_by_name(
    project: Path, url: str, config: str, first_run_is_dbts: bool, refused: str
) -> None:
    (project / "snapshots").mkdir()
    write_accounts(project, "(1, 10)")
    spec = SNAPSHOT.replace("      check_cols: [balance]\n", "").replace("strategy: check", config)
    (project / "snapshots" / "history.yml").write_text(spec)
    build(project, url, "--select", "accounts")
    if first_run_is_dbts:
        build(project, url, "--select", "accounts_history")
    assert refused in refusal(project, url, "--select", "accounts_history")


def test_append_never_deletes_even_with_a_unique_key(project: Path, url: str) -> None:
    model = project / "models" / "accounts.sql"
    write_accounts(project, "(1, 10), (2, 20)")
    edit(model, "unique_key=", "incremental_strategy='append', unique_key=")
    build(project, url, "--select", "accounts")
    write_accounts(project, "(2, 21)")
    edit(model, "unique_key=", "incremental_strategy='append', unique_key=")
    build(project, url, "--select", "accounts")
    assert rows(url, "select * from mat.accounts order by 1, 2") == [(1, 10), (2, 20), (2, 21)]


@pytest.mark.parametrize(
    ("model", "config", "refused"),
    [
        (
            "accounts",
            "incremental_strategy='merge', ",
            "incremental_strategy 'merge' is not supported",
        ),
        (
            "accounts",
            "incremental_predicates=['1 = 1'], ",
            "incremental_predicates are not supported",
        ),
        (
            "accounts",
            "on_schema_change='sync_all_columns', ",
            "on_schema_change 'sync_all_columns' is not",
        ),
        ("account_totals", "grants={'select': ['x']}, ", "grants are not applied by tieout's"),
    ],
)
def test_what_the_materializations_do_not_do_is_refused_by_name(
    project: Path, url: str, model: str, config: str, refused: str
) -> None:
    write_accounts(project, "(1, 10)")
    edit(project / "models" / f"{model}.sql", "{{ config(", "{{ config(" + config)
    assert refused in refusal(project, url)


def test_diff_writes_only_the_difference_of_the_whole_table(project: Path, url: str) -> None:
    model = project / "models" / "accounts.sql"
    write_accounts(project, "(1, 10), (2, 20), (3, 30)")
    edit(model, "unique_key=", "incremental_strategy='diff', unique_key=")
    build(project, url, "--select", "accounts")
    untouched = rows(url, "select xmin::text from mat.accounts where account_id = 1")

    write_accounts(project, "(1, 10), (2, 25), (4, 40)")  # 2 changes, 3 is gone, 4 is new
    edit(model, "unique_key=", "incremental_strategy='diff', unique_key=")
    assert build(project, url, "--select", "accounts")["accounts"]["rows_affected"] == 3
    assert rows(url, "select * from mat.accounts order by 1") == [(1, 10), (2, 25), (4, 40)]
    assert rows(url, "select xmin::text from mat.accounts where account_id = 1") == untouched
