"""Every number of the drift report comes from one snapshot: the cards equal the sums of the
tables, each heading's count equals the rows under it, and the CSV and the workbook agree with
the page, before and after a finding is waived (the waiver used to leave the cards, built from
the saved run totals, one finding and 300 EUR away from the tables, read live)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from tieout.reconcile import findings
from tieout.report.build import report

from .page_reader import Page

RUN = "report-run-1"


@pytest.fixture(autouse=True)
def rebuilt_after(report_db: str):
    """The other report tests read report-run-1's files: leave them as the run left them."""
    yield
    report(RUN, url=report_db)


def build(url: str) -> dict[str, Any]:
    paths = report(RUN, url=url)
    page = Page(paths["html"].read_text())
    with paths["csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    book = load_workbook(paths["xlsx"], read_only=True)
    return {"page": page, "csv": rows, "book": book, "paths": paths}


def assert_consistent(built: dict[str, Any]) -> None:
    page: Page = built["page"]
    rows: list[dict[str, str]] = built["csv"]

    # the money cards, the money table and the open rows of the CSV add up to the same
    cards = page.money_cards()
    table: dict[str, float] = defaultdict(float)
    for r in page.tables["money-table"]["rows"]:
        table[r["currency"]["text"]] += float(r["money"]["v"])
    from_csv: dict[str, float] = defaultdict(float)
    for r in rows:
        if r["status"] == "open" and r["money_impact"]:
            from_csv[r["currency"]] += float(r["money_impact"])
    assert cards == {k: round(v, 2) for k, v in table.items()}
    assert cards == {k: round(v, 2) for k, v in from_csv.items()}
    # ... and the "what to do" lines of open differences add up to them too
    lines: dict[str, float] = defaultdict(float)
    needs_person = 0
    for table_id, t in page.tables.items():
        if not table_id.startswith("actions-") or table_id == "actions-breaks":
            continue
        for r in t["rows"]:
            state = r["state"]["text"]
            if state == "needs a person":
                needs_person += int(r["records"]["text"].replace(",", ""))
            if state in ("fixed tonight", "resolved at the source"):
                continue
            words = r["money"]["text"].split()
            for amount, currency in zip(words[::2], words[1::2], strict=True):
                lines[currency] += float(amount.replace(",", ""))
    assert cards == {k: round(v, 2) for k, v in lines.items()}
    assert int(page.card("needs_person").replace(",", "")) == needs_person

    # each heading announces exactly the rows under it
    announced = [h for h in page.headings if h["count"] is not None]
    assert len(announced) >= 4
    for heading in announced:
        shown = len(page.tables[heading["table"]]["rows"]) if heading["table"] else 0
        assert heading["count"] == shown, heading

    # the count cards equal the tables and the CSV
    statuses = defaultdict(int)
    for r in rows:
        statuses[r["status"]] += 1
    for status, table_id in (("open", "open"), ("resolved", "resolved"), ("waived", "waived")):
        card = int(page.card(status).replace(",", ""))
        assert card == statuses[status]
        assert card == len(page.tables.get(table_id, {"rows": []})["rows"])

    # the workbook has every finding of the CSV and the same "what to do" lines as the page
    book = built["book"]
    assert {"What to do", "Balance breaks", "Receivables aging", "Match rates", "Findings",
            "Held writes", "Validation"} <= set(book.sheetnames)  # fmt: skip
    sheet_rows = list(book["Findings"].iter_rows(values_only=True))
    assert len(sheet_rows) - 1 == len(rows)
    page_lines = sum(
        len(t["rows"]) for table_id, t in page.tables.items() if table_id.startswith("actions-")
    )
    assert len(list(book["What to do"].iter_rows(values_only=True))) - 1 == page_lines


def test_cards_tables_csv_and_workbook_agree_before_and_after_a_waiver(
    reported_run: dict[str, Any], report_db: str
) -> None:
    before = build(report_db)
    assert_consistent(before)
    assert before["page"].money_cards() == {"EUR": 301.0}
    assert before["page"].card("waived") == "0"

    with psycopg.connect(report_db) as conn:
        (finding_id,) = conn.execute(
            "select finding_id from recon.findings where entity_ref = 'INV-3'"
        ).fetchone()
        findings.waive(conn, finding_id, "written off in November", by="test")
    try:
        after = build(report_db)
        assert_consistent(after)
        page = after["page"]
        assert page.money_cards() == {"EUR": 1.0}
        assert (page.card("open"), page.card("waived")) == ("2", "1")
        waived = page.tables["waived"]["rows"]
        assert [r["record"]["text"] for r in waived] == ["INV-3"]
        assert waived[0]["why"]["text"] == "written off in November"
    finally:
        with psycopg.connect(report_db) as conn:
            findings.unwaive(conn, finding_id, "test over", by="test")


def test_a_waiver_during_the_build_cannot_split_the_report(
    reported_run: dict[str, Any], report_db: str, monkeypatch: Any
) -> None:
    """A waiver committed after the snapshot is taken is in none of the report's numbers."""
    from tieout.report import build as building

    with psycopg.connect(report_db) as conn:
        (finding_id,) = conn.execute(
            "select finding_id from recon.findings where entity_ref = 'INV-3'"
        ).fetchone()
    original = building.action_groups

    def waive_meanwhile(*args: Any, **kwargs: Any) -> Any:
        with psycopg.connect(report_db) as other:
            findings.waive(other, finding_id, "meanwhile", by="test")
        return original(*args, **kwargs)

    monkeypatch.setattr(building, "action_groups", waive_meanwhile)
    try:
        built = build(report_db)
        assert_consistent(built)
        assert built["page"].money_cards() == {"EUR": 301.0}
        assert built["page"].card("waived") == "0"
    finally:
        with psycopg.connect(report_db) as conn:
            findings.unwaive(conn, finding_id, "test over", by="test")


def test_report_paths_keep_their_names(reported_run: dict[str, Any]) -> None:
    paths = reported_run["paths"]
    assert paths["html"].name == "drift_report.html"
    assert paths["csv"].name == "findings.csv"
    assert paths["xlsx"] == Path(paths["html"]).with_name("drift_report.xlsx")
    assert paths["xlsx"].exists()


def test_csv_and_workbook_never_hold_a_formula(reported_run: dict[str, Any], report_db: str):
    formula = '=HYPERLINK("http://attacker.example","click")'
    with psycopg.connect(report_db) as conn:
        finding_id, kept = conn.execute(
            """select finding_id, system_value from recon.findings
               where entity_ref = 'INV-2' and field = 'amount'"""
        ).fetchone()
        conn.execute(
            "update recon.findings set system_value = %s where finding_id = %s",
            (formula, finding_id),
        )
    try:
        built = build(report_db)
    finally:
        with psycopg.connect(report_db) as conn:
            conn.execute(
                "update recon.findings set system_value = %s where finding_id = %s",
                (kept, finding_id),
            )
    row = next(r for r in built["csv"] if r["finding_id"] == str(finding_id))
    assert row["system_value"] == "'" + formula
    assert float(row["money_impact"]) == 1.0  # a number is never prefixed
    sheet = built["book"]["Findings"]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    cells = next(
        r for r in sheet.iter_rows(min_row=2) if r[header.index("finding_id")].value == finding_id
    )
    cell = cells[header.index("system_value")]
    assert (cell.value, cell.data_type) == (formula, "s")
    assert cells[header.index("money_impact")].data_type == "n"
