"""When validation reads whole tables: the nights of validation.yml, or when asked; a typo in the
file is a config error naming the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tieout.config import ConfigError, Validation, load_validation
from tieout.validate.run import full_reason
from tieout.validate.suites import build_suites

MONDAY, TUESDAY = date(2026, 12, 7), date(2026, 12, 8)


def test_whole_tables_on_the_configured_nights_or_when_asked() -> None:
    default = Validation()
    assert default.full_suites_on == ["monday"]
    assert "monday" in str(full_reason(None, MONDAY, default))
    assert full_reason(None, TUESDAY, default) is None
    assert full_reason(True, TUESDAY, default) == "whole tables asked for"
    assert full_reason(False, MONDAY, default) is None
    weekend = Validation(full_suites_on=["saturday", "sunday"])
    assert full_reason(None, date(2026, 12, 6), weekend) and not weekend.full_on(MONDAY)


def test_the_file_is_typed(tmp_path: Path) -> None:
    assert load_validation(tmp_path) == Validation()  # no file: the defaults
    (tmp_path / "validation.yml").write_text("full_suites_on: [mondays]\n")
    with pytest.raises(ConfigError, match="full_suites_on"):
        load_validation(tmp_path)
    (tmp_path / "validation.yml").write_text("full_suites_on: [friday]\nmax_changed_share: 0\n")
    with pytest.raises(ConfigError, match="max_changed_share"):
        load_validation(tmp_path)
    (tmp_path / "validation.yml").write_text("keep_validations: 0\n")
    with pytest.raises(ConfigError, match="keep_validations"):
        load_validation(tmp_path)


def test_the_committed_file_loads() -> None:
    assert load_validation().full_suites_on == ["monday"]
    assert load_validation().keep_validations == Validation().keep_validations == 14


def test_checks_that_need_the_whole_table_say_so() -> None:
    """Uniqueness, references, sums, counts and change rates read the whole table; value
    checks and raw field types read rows."""
    scopes = {(s.name, c.name): c.scope for s in build_suites() for c in s.checks}
    assert scopes[("canonical.customers", "customer_id unique")] == "table"
    assert scopes[("canonical.customers", "crm_id unique")] == "table"
    assert scopes[("canonical.order_lines", "order_id, line_number unique")] == "table"
    assert scopes[("canonical.invoices", "customer_id references canonical.customers")] == "table"
    assert scopes[("canonical.invoices", "amount equals sum of lines")] == "table"
    assert scopes[("canonical.payments", "amount not negative")] == "row"
    assert scopes[("canonical.customers", "email format")] == "row"
    assert scopes[("raw.erp__invoices", "total_amount present as money")] == "row"
    assert scopes[("raw.erp__invoices", "modified_at never goes backwards")] == "row"
    rates = [k for k, v in scopes.items() if "changed on at most" in k[1]]
    assert rates and all(scopes[k] == "table" for k in rates)
    counts = [k for k in scopes if k[1].startswith("row count within bounds")]
    assert counts and all(scopes[k] == "table" for k in counts)
