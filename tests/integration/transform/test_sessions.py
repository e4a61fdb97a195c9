"""One dbt invocation reuses PostgreSQL sessions across nodes (tieout.transform.sessions), and a
reused session starts as clean as a new one: no temporary table, setting or role a node left."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout.transform.runner import run_dbt

PROJECT = """
name: sessions
version: "1.0.0"
config-version: 2
profile: tieout
models:
  sessions:
    +schema: sess
    +materialized: table
"""
# What a session looks like to the node running in it; `first` leaves a temporary table and a
# changed setting behind in its session, which no later node may see.
PROBE = """
{{{{ config(pre_hook={hook}) }}}}
{ref}
select
    pg_backend_pid() as pid,
    (
        select count(*) from pg_class where relname = 'left_behind' and relpersistence = 't'
    ) as leftovers,
    current_setting('work_mem') as work_mem
"""
CHAIN = ["first", "second", "third", "fourth", "fifth", "sixth"]


@pytest.fixture
def project(tmp_path: Path, small_project: Callable[[Path, str], Path]) -> Path:
    root = small_project(tmp_path / "project", PROJECT)
    for position, name in enumerate(CHAIN):
        hook = (
            '["create temporary table left_behind (x int)", "set work_mem = \'7MB\'"]'
            if name == "first"
            else "[]"
        )
        # each model waits for the one before it, so a finished node's session is free for it
        ref = f"-- depends_on: {{{{ ref('{CHAIN[position - 1]}') }}}}" if position else ""
        (root / "models" / f"{name}.sql").write_text(PROBE.format(hook=hook, ref=ref))
    return root


@pytest.fixture
def url(new_warehouse: Callable[..., Any]) -> Iterator[str]:
    with new_warehouse("tieout_test_sessions") as fresh:
        with psycopg.connect(fresh, autocommit=True) as conn:
            # dbt runs as tieout_transformer, which makes no schemas: the owner does, as for
            # the project's own layers
            conn.execute("create schema sess")
            conn.execute("grant usage, create on schema sess to tieout_transformer")
        yield fresh


def probes(url: str) -> dict[str, tuple[int, int, str]]:
    with psycopg.connect(url) as conn:
        return {
            name: conn.execute(f"select pid, leftovers, work_mem from sess.{name}").fetchone()  # type: ignore[misc]
            for name in CHAIN
        }


def dbt_sessions(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity "
            "where datname = current_database() and application_name = 'dbt'"
        ).fetchone()
    return int(row[0]) if row else -1


def test_nodes_share_sessions_that_start_clean(project: Path, url: str) -> None:
    with psycopg.connect(url) as conn:
        default_work_mem = conn.execute("show work_mem").fetchone()[0]  # type: ignore[index]
    run_dbt(["build"], url=url, project_dir=project)
    seen = probes(url)

    # six nodes one after another: dbt alone opens six sessions, reuse needs far fewer
    assert len({pid for pid, _, _ in seen.values()}) < len(CHAIN)
    assert seen["first"][1:] == (1, "7MB")  # the hook ran in the node's own session
    for name in CHAIN[1:]:
        assert seen[name][1:] == (0, default_work_mem), name


def test_sessions_are_closed_and_dbt_restored_after_the_invocation(project: Path, url: str) -> None:
    from dbt.adapters.postgres.connections import PostgresConnectionManager

    dbt_open = PostgresConnectionManager.__dict__["open"]
    run_dbt(["build"], url=url, project_dir=project)
    assert PostgresConnectionManager.__dict__["open"] is dbt_open
    assert "close" not in PostgresConnectionManager.__dict__  # dbt's own, inherited

    deadline = time.monotonic() + 5
    while dbt_sessions(url) and time.monotonic() < deadline:
        time.sleep(0.05)  # a closed session's server process leaves pg_stat_activity shortly
    assert dbt_sessions(url) == 0


def test_a_failed_node_leaves_a_usable_session(
    project: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "models" / "broken.sql").write_text("select 1 / 0 as boom")
    finished: list[tuple[str, str]] = []
    result = run_dbt(
        ["build", "--threads", "1"],
        url=url,
        project_dir=project,
        check=False,
        on_node=lambda done, total, node, status: finished.append((node, status)),
    )
    # dbt's console log is off: its error reaches stderr through tieout's echo, and every node
    # is reported as it finishes
    assert "division by zero" in capsys.readouterr().err
    assert len(finished) == len(CHAIN) + 1
    assert ("model.sessions.broken", "error") in finished
    statuses = {n["unique_id"].rsplit(".", 1)[-1]: n["status"] for n in result.nodes}
    assert statuses.pop("broken") == "error"
    assert set(statuses.values()) == {"success"}
    assert all(leftovers == 0 for name, (_, leftovers, _) in probes(url).items() if name != "first")
