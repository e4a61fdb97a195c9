"""The drift report's files for spreadsheets: findings.csv and drift_report.xlsx.

A cell a spreadsheet would run as a formula (one starting with =, +, -, @, a tab or a carriage
return) is neutralised with a leading apostrophe in the CSV, as OWASP advises, and is stored as
plain text in the workbook; numbers stay numbers. Nothing here reads anything but the snapshot.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# findings on the workbook's Findings sheet (Excel stops at 1,048,576 rows; the CSV has them all)
WORKBOOK_ROWS = 100_000

# columns of report_findings that hold text a source system or a person wrote
TEXT_COLUMNS = {
    "status", "entity", "system", "kind", "field", "entity_ref", "finding_key", "system_keys",
    "source_of_truth", "canonical_value", "system_value", "currency", "waived_by",
    "waive_reason", "customer_no", "customer_name", "action", "action_reason",
}  # fmt: skip


def neutralise(value: Any) -> Any:
    """A text cell that would start a formula, prefixed with an apostrophe; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_sql(column: str) -> str:
    """The select-list item that neutralises `column` in the CSV's COPY (text columns only)."""
    if column not in TEXT_COLUMNS:
        return column
    text = f"cast({column} as text)"
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "chr(9)", "chr(13)"])
    return (
        f"case when left({text}, 1) in ({starts}) then '''' || {text} else {text} end as {column}"
    )


def _cell(sheet: WriteOnlyWorksheet, value: Any, bold: bool = False) -> WriteOnlyCell:
    if isinstance(value, Decimal):
        value = float(value)
    elif isinstance(value, dict | list):
        value = str(value)
    elif hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones; the page says UTC
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with
    if bold:
        cell.font = Font(bold=True)
    return cell


def _sheet(book: Workbook, title: str, header: list[str], rows: Any) -> None:
    sheet = book.create_sheet(title)
    sheet.append([_cell(sheet, h, bold=True) for h in header])
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])


def write_workbook(conn: psycopg.Connection[Any], path: Path, data: dict[str, Any]) -> None:
    """One sheet per section of the page, every finding of the run on its own sheet."""
    book = Workbook(write_only=True)
    currencies = sorted({c for g in data["actions"] + data["breaks"] for c in g["money"]})
    _sheet(
        book,
        "What to do",
        ["system", "what", "state", "kind", "technical kind", "records", *currencies, "why"],
        (
            [
                g["system"],
                g["sentence"],
                g["state_name"],
                g["kind_name"],
                g["kind"],
                g["count"],
                *[g["money"].get(c) for c in currencies],
                g["reason"],
            ]
            for g in data["actions"] + data["breaks"]
        ),
    )
    with conn.cursor() as cur:
        cur.execute(
            """select outcome, subject_ref, customer_no, customer_name, currency, expected,
                      actual, abs(difference)
               from report_balances where outcome = any(%s)
               order by outcome, abs(difference) desc""",
            (data["break_outcomes"],),
        )
        _sheet(
            book,
            "Balance breaks",
            [
                "break",
                "record",
                "customer no",
                "customer",
                "currency",
                "expected",
                "actual",
                "difference",
            ],  # fmt: skip
            cur,
        )
    receivables = data["receivables"]
    _sheet(
        book,
        "Receivables aging",
        ["age", "currency", "invoices", "outstanding"],
        (
            [b["bucket_name"], b["currency"], b["invoices"], b["outstanding"]]
            for b in receivables["buckets"]
        ),
    )
    _sheet(
        book,
        "Match rates",
        ["entity", "system", "records that agree", "records compared", "match rate %"],
        (
            [m["entity"], m["system_name"], m["agree"], m["compared"], m["rate"]]
            for m in data["match"]["current"]
        ),
    )
    with conn.cursor(name="report_findings_sheet") as cur:
        cur.itersize = 5000
        cur.execute(
            f"select {', '.join(data['csv_columns'])} from report_findings "
            f"order by status, money_impact desc nulls last, finding_id limit {WORKBOOK_ROWS}"
        )
        _sheet(book, "Findings", list(data["csv_columns"]), cur)
    if data["csv_rows"] > WORKBOOK_ROWS:
        book["Findings"].append(
            [f"{data['csv_rows'] - WORKBOOK_ROWS:,} more findings are in findings.csv"]
        )
    held = data["reverse_etl"]["held"]
    _sheet(
        book,
        "Held writes",
        ["outbox id", "system", "entity", "record", "fields", "why held", "held at"],
        (
            [
                h["outbox_id"],
                h["system"],
                h["entity"],
                h["record"],
                h["fields"],
                h["held_reason"],
                h["held_at"],
            ]  # fmt: skip
            for h in held
        ),
    )
    validation = data["validation"]
    _sheet(
        book,
        "Validation",
        list(validation["columns"]),
        ([r.get(c) for c in validation["columns"]] for r in validation["rows"]),
    )
    book.save(path)
