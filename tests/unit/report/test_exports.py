"""Cells a spreadsheet would run as a formula are neutralised; numbers stay numbers."""

from __future__ import annotations

import pytest

from tieout.report import exports


@pytest.mark.parametrize("text", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_formula_starts_get_an_apostrophe(text):
    assert exports.neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["Berlin", "INV-2", "", None, -5, 12.5])
def test_everything_else_is_unchanged(value):
    assert exports.neutralise(value) == value


def test_only_text_columns_are_rewritten_in_the_copy():
    assert exports.csv_safe_sql("money_impact") == "money_impact"
    sql = exports.csv_safe_sql("system_value")
    assert sql.startswith("case when left(cast(system_value as text), 1) in (")
    assert "chr(9)" in sql and "chr(13)" in sql and sql.endswith(" as system_value")
