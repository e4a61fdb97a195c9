"""`tieout findings list` and `tieout reconcile` refuse an entity or system the config does not
declare, listing the ones it does, before they touch the warehouse."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tieout.cli import cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--system", "nosuch"],
            "Invalid value for '--system': no system named 'nosuch' in the config; "
            "expected one of billing, crm, erp, shop",
        ),
        (
            ["--entity", "customers"],
            "Invalid value for '--entity': no entity named 'customers' in the config; "
            "expected one of customer, invoice, order, payment, product",
        ),
    ],
)
def test_findings_list_refuses_unknown_names(
    monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    # nothing listens on port 1: reaching the database at all would fail the test
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/warehouse")
    result = CliRunner().invoke(cli, ["findings", "list", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert expected in " ".join(result.stderr.split())


def test_reconcile_refuses_an_unknown_entity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/warehouse")
    result = CliRunner().invoke(cli, ["reconcile", "--entity", "customer", "--entity", "nosuch"])
    assert result.exit_code == 2, result.output
    assert "no entity named 'nosuch' in the config" in result.stderr
