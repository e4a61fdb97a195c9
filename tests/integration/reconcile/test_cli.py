"""`tieout reconcile` and `tieout findings list|show|waive` against a reconciled case."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from tieout.cli import cli as tieout_cli
from tieout.config import load_config
from tieout.reconcile import cli
from tieout.reconcile.run import reconcile

from .conftest import NO_ALERTS


def test_list_show_and_waive(load_case, conn, warehouse_url, monkeypatch):
    case, relations = load_case("kinds")
    case.name = "cli_kinds"
    reconcile(
        "cli-1",
        url=warehouse_url,
        specs={case.name: case.entity},
        relations={case.name: next(iter(relations.values()))},
        alerts=NO_ALERTS,
        with_balances=False,
    )
    runner = CliRunner()
    listed = runner.invoke(cli.findings, ["list", "--entity", "cli_kinds", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 8 and {r["status"] for r in rows} == {"open"}
    table = runner.invoke(cli.findings, ["list", "--entity", "cli_kinds", "--kind", "null_key"])
    assert "null_key" in table.output and "crm" in table.output

    target = next(r for r in rows if r["kind"] == "missing_in_system")["finding_id"]
    refused = runner.invoke(cli.findings, ["waive", str(target), "--reason", " "])
    assert refused.exit_code == 2 and "reason" in refused.output
    monkeypatch.setenv("TIEOUT_USER", "controller@example")
    waived = runner.invoke(
        cli.findings, ["waive", str(target), "--reason", "customer closed their shop account"]
    )
    assert waived.exit_code == 0, waived.output
    assert "waived by controller@example" in waived.output
    shown = runner.invoke(cli.findings, ["show", str(target)])
    assert "waive_reason" in shown.output
    assert "audit:" in shown.output and "waive by controller@example" in shown.output
    missing = runner.invoke(cli.findings, ["show", "999999999"])
    assert missing.exit_code == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--system", "nosuch"],
            "Invalid value for '--system': no system named 'nosuch' in the config or in "
            "recon.findings; expected one of billing, crm, erp, shop",
        ),
        (
            ["--entity", "customers"],
            "Invalid value for '--entity': no entity named 'customers' in the config or in "
            "recon.findings; expected one of customer, invoice, order, payment, product",
        ),
    ],
)
def test_list_refuses_names_neither_config_nor_findings_hold(
    warehouse_url: str, args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(cli.findings, ["list", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert expected in " ".join(result.stderr.split())


def test_reconcile_command_without_the_report(warehouse_url: str, conn: psycopg.Connection) -> None:
    """`tieout reconcile --no-report --json` runs the reconcile stage alone: the run's figures,
    no report files, and the run's row in recon.drift_runs."""
    result = CliRunner().invoke(
        tieout_cli, ["reconcile", "--run-id", "cli-no-report", "--no-report", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["run_id"] == "cli-no-report"
    assert figures["report"] == {}
    assert set(figures["entities"]) | set(figures["skipped"]) == set(load_config().entities)
    row = conn.execute(
        "select alert_status from recon.drift_runs where run_id = 'cli-no-report'"
    ).fetchone()
    assert row == (figures["alert_status"],)
