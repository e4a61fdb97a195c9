"""Bad input from a source or its YAML, through the real HTTP path against a local API: deep
records, a key no record has, a key twice in a page, a wrong base URL kept in the resume
point, a records_path that finds no list, a source without auth, a failing token endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tieout.extract.cli import extract as extract_command
from tieout.extract.run import extract_stream

from .conftest import LEDGER_YML

Rewrite = Callable[..., None]


@pytest.fixture
def ledger_yml(ledger: Path) -> Rewrite:
    """Rewrite ledger.yml: each keyword replaces one line that starts with it."""

    def rewrite(**lines: str) -> None:
        text = LEDGER_YML.format(commit_every_rows=40)
        out = []
        for line in text.splitlines():
            key = line.strip().removeprefix("- ").split(":")[0]
            out.append(line.split(key)[0] + lines[key] if key in lines else line)
        (ledger / "sources" / "ledger.yml").write_text("\n".join(out) + "\n")

    return rewrite


def run_row(conn: psycopg.Connection, run_id: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "select status, records, rows, quarantined, retries, duplicates, error "
        "from ops.extract_runs where run_id = %s and source = 'ledger'",
        (run_id,),
    ).fetchone()


# ---------------------------------------------------------------- item 5: nesting


@pytest.mark.parametrize("depth", [5000, 995])
def test_record_nested_5000_deep_is_quarantined_and_the_rest_loads(
    ledger: Path, api: Any, conn: psycopg.Connection, depth: int
) -> None:
    deep = b"[" * depth + b"]" * depth
    api.state.patch_body = lambda data: data.replace(b'"item 5 v0"', deep)
    figures = extract_stream("ledger", "items", "run-deep")
    assert figures["rows"] == 54 and figures["quarantined"] == 1
    (reason, pk, text), *others = conn.execute(
        "select reason, pk, raw_text from ops.quarantine where source = 'ledger'"
    ).fetchall()
    assert others == [] and pk == "5"
    assert "nested deeper than" in reason
    assert json.loads(text)["id"] == 5  # the record, its too-deep part cut out
    keys = {r[0] for r in conn.execute("select _pk from raw.ledger__items")}
    assert "5" not in keys and len(keys) == 54


def test_record_nested_within_the_parser_limit_loads_whole(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    deep = b"[" * 600 + b"]" * 600
    api.state.patch_body = lambda data: data.replace(b'"item 5 v0"', deep)
    assert extract_stream("ledger", "items", "run-600")["rows"] == 55
    (name,) = conn.execute(
        "select _record -> 'name' from raw.ledger__items where _pk = '5'"
    ).fetchone()  # type: ignore[misc]
    assert json.dumps(name, separators=(",", ":")) == deep.decode()


# ---------------------------------------------------------------- item 6: mostly quarantined


def test_primary_key_no_record_has_fails_the_stream_naming_the_field(
    ledger_yml: Rewrite, api: Any, conn: psycopg.Connection
) -> None:
    ledger_yml(primary_key="primary_key: [uid]")
    result = CliRunner().invoke(
        extract_command, ["--source", "ledger", "--run-id", "run-nokey", "-q"]
    )
    assert result.exit_code == 1, result.output
    assert "0 ok, 1 failed" in result.output
    assert "primary key field 'uid' is missing" in result.output
    status, *_, error = run_row(conn, "run-nokey")  # type: ignore[misc]
    assert status == "failed"
    assert "'uid'" in error and "quarantined" in error and "max_quarantined_share" in error
    # judged at the first commit (40 records), not after the whole stream was held
    assert "40 of 40 records" in error
    kept = conn.execute("select count(*) from ops.quarantine where source = 'ledger'").fetchone()
    assert kept == (40,)
    # the cursor did not move past records that were never loaded: fixing the YAML and
    # running again loads them without a full refresh
    state = conn.execute(
        "select cursor_value from ops.sync_state where source = 'ledger'"
    ).fetchone()
    assert state is None or state[0] is None
    ledger_yml()
    assert extract_stream("ledger", "items", "run-fixed")["rows"] == 55


def test_quarantine_below_the_threshold_still_loads(
    ledger_yml: Rewrite, api: Any, conn: psycopg.Connection
) -> None:
    for record in api.state.records[:15]:
        record.pop("id")
    ledger_yml(lookback="lookback: 1h\nmax_quarantined_share: 0.5")
    figures = extract_stream("ledger", "items", "run-some")
    assert figures["rows"] == 40 and figures["quarantined"] == 15


# ---------------------------------------------------------------- item 7: a key twice in a page


def test_same_key_twice_in_a_page_keeps_one_version_on_every_run(
    ledger: Path, api: Any, fake: Any, conn: psycopg.Connection
) -> None:
    api.state.records.insert(11, fake.make_record(11, version=1))  # beside id 11, page 1
    first = extract_stream("ledger", "items", "run-dup-1")
    assert first["rows"] == 55 and first["duplicates"] == 1
    for run_id in ("run-dup-2", "run-dup-3"):
        again = extract_stream("ledger", "items", run_id, full_refresh=True)
        assert again["rows"] == 0 and again["duplicates"] == 1
    # served in the other order, the same version is kept: nothing new
    api.state.records[10], api.state.records[11] = api.state.records[11], api.state.records[10]
    assert extract_stream("ledger", "items", "run-dup-4", full_refresh=True)["rows"] == 0
    versions = conn.execute(
        "select _record ->> 'name' from raw.ledger__items where _pk = '11'"
    ).fetchall()
    assert versions == [("item 11 v1",)]  # the later cursor value wins
    assert run_row(conn, "run-dup-2")[5] == 1  # type: ignore[index]


# ---------------------------------------------------------------- item 8: base URL in state


def test_wrong_base_url_is_not_kept_in_the_resume_point(
    ledger: Path, api: Any, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = f"{api.url}?api_key={api.state.api_key}"
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_LEDGER", "http://127.0.0.1:9?api_key=x")
    with pytest.raises(Exception, match="127.0.0.1:9"):
        extract_stream("ledger", "items", "run-wrong")
    state = conn.execute("select resume from ops.sync_state where source = 'ledger'").fetchone()
    assert state is not None
    (resume,) = state
    assert "127.0.0.1" not in json.dumps(resume)
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_LEDGER", good)
    assert extract_stream("ledger", "items", "run-right")["rows"] == 55


@pytest.mark.parametrize("full_refresh", [False, True])
def test_resume_point_with_an_old_host_uses_the_configured_one(
    ledger: Path, api: Any, conn: psycopg.Connection, full_refresh: bool
) -> None:
    # a resume point as tieout stored it before: the whole URL, with a host now wrong
    old = {"url": "http://127.0.0.1:9/pages/items", "params": {"page": 1, "per_page": 20}}
    conn.execute(
        """insert into ops.sync_state (source, stream, pass_id, pass_full_refresh, resume)
           values ('ledger', 'items', 'p1', %s, %s)""",
        (full_refresh, json.dumps(old)),
    )
    figures = extract_stream("ledger", "items", "run-legacy", full_refresh=full_refresh)
    assert figures["rows"] == 55


def test_reset_state_forgets_the_resume_point(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    extract_stream("ledger", "items", "run-1")
    runner = CliRunner()
    refused = runner.invoke(extract_command, ["--reset-state"])
    assert refused.exit_code == 2 and "--source" in refused.output
    result = runner.invoke(
        extract_command, ["--reset-state", "--source", "ledger", "--stream", "items"]
    )
    assert result.exit_code == 0, result.output
    assert "ledger.items" in result.output
    assert conn.execute(
        "select count(*) from ops.sync_state where source = 'ledger'"
    ).fetchone() == (0,)
    assert conn.execute("select count(*) from raw.ledger__items").fetchone() == (55,)


# ---------------------------------------------------------------- item 9: records_path


def test_records_path_that_finds_no_list_is_a_configuration_error(
    ledger_yml: Rewrite, api: Any, conn: psycopg.Connection
) -> None:
    ledger_yml(records_path="records_path: results")
    with pytest.raises(Exception) as failed:
        extract_stream("ledger", "items", "run-path")
    message = str(failed.value)
    assert "ledger.items" in message and "records_path 'results'" in message
    assert "'data'" in message and "'meta'" in message  # what the body had at the top level
    assert "unreadable" not in message
    assert api.state.requests == 1  # not retried
    assert conn.execute(
        "select count(*) from ops.quarantine where source = 'ledger'"
    ).fetchone() == (0,)


def test_records_path_error_is_not_retried_by_the_nightly(
    ledger_yml: Rewrite, api: Any, conn: psycopg.Connection
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tieout import orchestration

    ledger_yml(records_path="records_path: results")
    with pytest.raises(AirflowFailException, match="records_path 'results'"):
        orchestration.extract_stream("ledger", "items", "run-path-dag")


def test_retries_of_a_failed_stream_are_counted(
    ledger: Path, api: Any, conn: psycopg.Connection
) -> None:
    api.state.fail_next = [503] * 7  # max_retries is 6: the seventh failure gives up
    with pytest.raises(Exception, match="gave up after 7 attempts"):
        extract_stream("ledger", "items", "run-503")
    row = run_row(conn, "run-503")
    assert row is not None and row[0] == "failed" and row[4] == 6  # retries


# ---------------------------------------------------------------- item 10: no auth


def test_auth_none_needs_no_connection(
    ledger_yml: Rewrite, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.state.auth = "none"
    monkeypatch.delenv("AIRFLOW_CONN_TIEOUT_LEDGER")
    ledger_yml(base_url=f"base_url: {api.url}", auth="auth: {kind: none}")
    assert extract_stream("ledger", "items", "run-open")["rows"] == 55


# ---------------------------------------------------------------- item 11: token endpoint


@pytest.mark.parametrize(
    ("status", "says", "not_says"),
    [
        (503, "server error", "client id and secret"),
        (401, "client id and secret", "server error"),
    ],
)
def test_token_endpoint_status_is_explained(
    ledger_yml: Rewrite,
    api: Any,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    says: str,
    not_says: str,
) -> None:
    api.state.auth = "oauth"
    api.state.token_fail_next = [status] * 20
    ledger_yml(auth="auth: {kind: oauth2_client_credentials, token_url: /oauth/token}")
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_LEDGER",
        f"{api.url}?client_id={api.state.client_id}&client_secret={api.state.client_secret}",
    )
    with pytest.raises(Exception) as failed:
        extract_stream("ledger", "items", f"run-token-{status}")
    message = str(failed.value)
    assert f"HTTP {status}" in message and says in message and not_says not in message
    assert api.state.client_secret not in message
