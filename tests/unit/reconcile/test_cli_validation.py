"""`tieout reconcile --entity` refuses an entity the config does not declare, listing the ones it
does, before it touches the warehouse."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tieout.cli import cli


def test_reconcile_refuses_an_unknown_entity(monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing listens on port 1: reaching the database at all would fail the test
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/warehouse")
    result = CliRunner().invoke(cli, ["reconcile", "--entity", "customer", "--entity", "nosuch"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert (
        "Invalid value for '--entity': no entity named 'nosuch' in the config; expected one of "
        "customer, invoice, order, payment, product" in " ".join(result.stderr.split())
    )
