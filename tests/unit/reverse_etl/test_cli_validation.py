"""`tieout reverse-etl plan|run --system` refuses a system reverse_etl.yml has no target in,
listing those it has, before it touches the warehouse or any system."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tieout.cli import cli


@pytest.mark.parametrize("command", ["plan", "run"])
def test_unknown_target_system_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # nothing listens on port 1: reaching the database at all would fail the test
    monkeypatch.setenv("TIEOUT_DATABASE_URL", "postgresql://tieout@127.0.0.1:1/warehouse")
    result = CliRunner().invoke(cli, ["reverse-etl", command, "--system", "ledger"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert (
        "Invalid value for '--system': no reverse ETL target in system 'ledger'; expected one "
        "of billing, crm, erp, shop" in " ".join(result.stderr.split())
    )
