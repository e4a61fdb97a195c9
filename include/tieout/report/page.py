"""The drift report's HTML: totals first, then money, age, fixes, warnings, trends, details.

One self-contained page (inline CSS, SVG and a few lines of vanilla JS for search and sort);
every value is escaped, and nothing is ever loaded from the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header{background:#13294b;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:20px 28px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:14px 18px;
margin:0 0 18px}h2{font-size:17px;margin:0 0 10px}.muted{color:#6b7380}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #dde1e7;border-radius:6px;
padding:10px 16px;min-width:150px;background:#fff}.card b{display:block;font-size:24px}
.card span{color:#6b7380;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.alert{background:#fdecea;border:1px solid #e0a39c;color:#7a1f14;padding:10px 16px;
border-radius:6px;margin:0 0 18px}.ok{background:#e9f6ee;border:1px solid #a9d7b8;
color:#1e5631;padding:10px 16px;border-radius:6px;margin:0 0 18px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;
padding:4px 8px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#f0f2f5;cursor:pointer;user-select:none;white-space:nowrap}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:520px;overflow:auto}input.search{padding:5px 8px;width:320px;
margin:0 0 8px;border:1px solid #c7ccd4;border-radius:4px}.charts{display:flex;
flex-wrap:wrap;gap:16px}.chart{width:640px;max-width:100%;background:#fff}
.chart .grid{stroke:#e3e6eb}.chart .axis{font-size:11px;fill:#5b6472}
.chart-title{font-size:13px;font-weight:600;fill:#1d2430}
.tag{display:inline-block;padding:0 6px;border-radius:3px;background:#eef1f6;font-size:12px}
details summary{cursor:pointer;font-weight:600;margin:6px 0}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function (h) {
        h.classList.remove('sorted-asc', 'sorted-desc'); });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v') || a.cells[col].textContent;
        var y = b.cells[col].getAttribute('data-v') || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('input.search').forEach(function (input) {
  var table = document.getElementById(input.getAttribute('data-table'));
  input.addEventListener('input', function () {
    var q = input.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
    });
  });
});
"""


def money(value: Any, currency: str | None = None) -> str:
    if value is None:
        return ""
    text = f"{float(value):,.2f}"
    return f"{text} {currency}" if currency else text


def cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, int | float | Decimal):
        shown = f"{value:,}" if isinstance(value, int) else f"{float(value):,.2f}"
        return f'<td class="num" data-v="{float(value)}">{shown}</td>'
    if isinstance(value, datetime):
        return f'<td data-v="{value.isoformat()}">{value:%Y-%m-%d %H:%M}</td>'
    return f"<td>{escape(str(value))}</td>"


def table(
    rows: Iterable[dict[str, Any]],
    columns: list[tuple[str, str]],
    table_id: str,
    searchable: bool = False,
) -> str:
    rows = list(rows)
    if not rows:
        return '<p class="muted">None.</p>'
    head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(cell(r.get(k)) for k, _ in columns) + "</tr>" for r in rows)
    search = (
        f'<input class="search" type="search" placeholder="Search…" data-table="{table_id}">'
        if searchable
        else ""
    )
    return (
        f'{search}<div class="scroll"><table class="sortable" id="{table_id}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def cards(run: dict[str, Any]) -> str:
    items = [
        (f"{run['open_findings']:,}", "open findings"),
        (f"{run['new_findings']:,}", "new this run"),
        (f"{run['resolved_findings']:,}", "resolved this run"),
        (f"{run['waived_findings']:,}", "waived"),
    ]
    for currency, amount in sorted((run["money_at_stake"] or {}).items()):
        items.append((money(amount, currency), "money at stake"))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in items
        )
        + "</div>"
    )


def alerts_block(run: dict[str, Any]) -> str:
    if run["alert_status"] == "alert":
        lines = "".join(f"<li>{escape(a['message'])}</li>" for a in run["alerts"])
        return f'<div class="alert"><b>Alert: thresholds crossed</b><ul>{lines}</ul></div>'
    return '<div class="ok">No alert threshold crossed.</div>'


FINDING_COLUMNS = [
    ("finding_id", "id"),
    ("status", "status"),
    ("entity", "entity"),
    ("system", "system"),
    ("kind", "kind"),
    ("field", "field"),
    ("entity_ref", "record"),
    ("canonical_value", "canonical value"),
    ("system_value", "system value"),
    ("money_impact", "money"),
    ("currency", "cur."),
    ("days_open", "days open"),
]


def render(data: dict[str, Any]) -> str:
    run = data["run"]
    money_rows = data["money"]
    money_table = (
        table(
            money_rows,
            [
                ("currency", "currency"),
                ("system", "system"),
                ("findings", "open findings"),
                ("money", "money at stake"),
            ],
            "money",
        )
        if money_rows
        else '<p class="muted">No open finding touches money.</p>'
    )
    reverse = data["reverse_etl"]
    reverse_html = (
        table(
            reverse["rows"],
            [
                ("entity", "entity"),
                ("system", "system"),
                ("field", "field"),
                ("fixed", "findings fixed"),
                ("money", "money"),
                ("currency", "cur."),
            ],
            "reverse",
        )
        + (
            "<p class='muted'>Outbox: "
            + ", ".join(f"{escape(str(s['state']))} {s['writes']:,}" for s in reverse["states"])
            + "</p>"
            if reverse.get("states")
            else ""
        )
        if reverse["available"]
        else f'<p class="muted">{escape(reverse["note"])}.</p>'
    )
    if reverse.get("skipped"):
        reverse_html += "<h3>Skipped this run</h3>" + table(
            reverse["skipped"],
            [("system", "system"), ("entity", "entity"), ("reason", "why")],
            "reverse-skipped",
        )
    if reverse.get("dead"):
        reverse_html += (
            "<h3>Writes that gave up (dead)</h3><p class='muted'>Retried on later runs up to "
            "the attempt limit; <code>tieout reverse-etl replay</code> tries them again.</p>"
            + table(
                reverse["dead"],
                [
                    ("system", "system"),
                    ("entity", "entity"),
                    ("record", "record"),
                    ("fields", "fields"),
                    ("attempts", "attempts"),
                    ("last_error", "last error"),
                ],
                "reverse-dead",
            )
        )
    validation = data["validation"]
    validation_html = (
        table(
            validation["rows"],
            [
                (k, k.replace("_", " "))
                for k in (validation["rows"][0] if validation["rows"] else {})
            ],
            "validation",
            searchable=True,
        )
        if validation["available"]
        else f'<p class="muted">{escape(validation["note"])}.</p>'
    )
    entities = run["entities"] or {}
    coverage = [
        {
            "entity": name,
            "records": e.get("records"),
            "found": e.get("found_total"),
            "new": e.get("opened"),
            "resolved": e.get("resolved"),
            "note": e.get("skipped") or ", ".join(e.get("fields_not_compared") or []),
        }
        for name, e in entities.items()
    ]
    sections = [
        f"<header><h1>Drift report</h1><p>run {escape(run['run_id'])} · reconciled "
        f"{run['reconciled_at']:%Y-%m-%d %H:%M %Z} · generated "
        f"{data['generated_at']:%Y-%m-%d %H:%M}</p></header><main>",
        alerts_block(run),
        f"<section><h2>Totals</h2>{cards(run)}<p class='muted'>Money at stake is the money the "
        "open findings touch: the difference for amounts, the whole amount for a missing, extra "
        "or duplicated record or a wrong currency.</p></section>",
        f"<section><h2>Money at stake by currency and system</h2>{money_table}</section>",
        "<section><h2>How long open differences have been open</h2>"
        + table(
            data["ages"],
            [
                ("age", "open for"),
                ("findings", "findings"),
                ("money", "money"),
                ("currency", "cur."),
            ],
            "ages",
        )
        + "</section>",
        f"<section><h2>What reverse ETL fixed</h2>{reverse_html}</section>",
        f"<section><h2>Validation warnings</h2>{validation_html}</section>",
        "<section><h2>Balances: invoices, payments and orders</h2>"
        + table(
            data["balances"],
            [
                ("check_name", "check"),
                ("outcome", "outcome"),
                ("currency", "currency"),
                ("subjects", "subjects"),
                ("amount", "amount"),
            ],
            "balances",
        )
        + "</section>",
        "<section><h2>Trends across runs</h2><div class='charts'>"
        + data["charts"]["findings"]
        + data["charts"]["money"]
        + "</div></section>",
        "<section><h2>Entities</h2>"
        + table(
            coverage,
            [
                ("entity", "entity"),
                ("records", "canonical records"),
                ("found", "differences"),
                ("new", "new"),
                ("resolved", "resolved"),
                ("note", "not compared"),
            ],
            "entities",
        )
        + "<details><summary>By entity, kind and system</summary>"
        + table(
            data["matrix"],
            [
                ("entity", "entity"),
                ("kind", "kind"),
                ("system", "system"),
                ("open", "open"),
                ("new", "new"),
                ("resolved", "resolved"),
                ("waived", "waived"),
            ],
            "matrix",
            searchable=True,
        )
        + "</details></section>",
        "<section><h2>Details</h2>"
        f"<p class='muted'>Each table shows up to 1,000 rows, largest money first; "
        f"<a href='{escape(data['csv_name'])}'>{escape(data['csv_name'])}</a> has all "
        f"{data['csv_rows']:,} findings of this run.</p>"
        f"<details open><summary>Open findings ({run['open_findings']:,})</summary>"
        + table(data["open_rows"], FINDING_COLUMNS, "open", searchable=True)
        + f"</details><details><summary>New this run ({run['new_findings']:,})</summary>"
        + table(data["new_rows"], FINDING_COLUMNS, "new", searchable=True)
        + f"</details><details><summary>Resolved this run ({run['resolved_findings']:,})"
        "</summary>"
        + table(data["resolved_rows"], FINDING_COLUMNS, "resolved", searchable=True)
        + f"</details><details><summary>Waived ({run['waived_findings']:,})</summary>"
        + table(
            data["waived_rows"],
            [*FINDING_COLUMNS, ("waived_by", "waived by"), ("waive_reason", "why")],
            "waived",
            searchable=True,
        )
        + "</details><details><summary>Balance breaks (not counting plain unpaid invoices)"
        "</summary>"
        + table(
            data["balance_rows"],
            [
                ("check_name", "check"),
                ("outcome", "outcome"),
                ("subject_ref", "subject"),
                ("customer_id", "customer"),
                ("currency", "cur."),
                ("expected", "expected"),
                ("actual", "actual"),
                ("difference", "difference"),
            ],
            "balance_rows",
            searchable=True,
        )
        + "</details></section></main>",
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>tieout drift report · {escape(run['run_id'])}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{STYLE}</style></head><body>"
        + "".join(sections)
        + f"<script>{SCRIPT}</script></body></html>"
    )
