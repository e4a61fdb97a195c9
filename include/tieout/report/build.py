"""The drift report of a run: an HTML page finance can read offline, and a CSV of the findings.

Figures are aggregated in PostgreSQL and the CSV is streamed with COPY, so a million findings
never sit in Python memory. The page must never load anything from the network.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tieout import db
from tieout.paths import reports_dir
from tieout.report import charts
from tieout.report.page import render

TABLE_ROWS = 1000  # drill-down rows per table on the page; the CSV always has every finding

# The findings a run saw (open or waived at the time) plus those it resolved, as of that run.
RUN_FINDINGS = """
select
    finding_id,
    case
        when resolved_run_id = %(run)s then 'resolved'
        when status = 'resolved' then 'open'
        else status
    end as status,
    first_seen_run_id = %(run)s as new_in_run,
    entity,
    system,
    kind,
    field,
    entity_ref,
    finding_key,
    system_keys,
    source_of_truth,
    canonical_value,
    system_value,
    currency,
    money_impact,
    first_seen_at,
    last_seen_at,
    round(extract(epoch from (%(at)s::timestamptz - first_seen_at)) / 86400.0, 2) as days_open,
    resolved_at,
    waived_by,
    waived_at,
    waive_reason
from recon.findings
where
    (first_seen_at <= %(at)s and last_seen_at >= %(at)s)
    or resolved_run_id = %(run)s
"""

CSV_COLUMNS = (
    "finding_id, status, new_in_run, entity, system, kind, field, entity_ref, finding_key, "
    "system_keys, source_of_truth, canonical_value, system_value, currency, money_impact, "
    "first_seen_at, last_seen_at, days_open, resolved_at, waived_by, waived_at, waive_reason"
)


class ReportError(RuntimeError):
    """The run cannot be reported (it was never reconciled)."""


def _rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def _exists(conn: psycopg.Connection[Any], relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()
    return bool(row and row[0])


def _columns(conn: psycopg.Connection[Any], relation: str) -> set[str]:
    schema, table = relation.split(".")
    return {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, table),
        ).fetchall()
    }


def write_csv(conn: psycopg.Connection[Any], path: Path, params: dict[str, Any]) -> int:
    """Stream the run's findings to CSV with COPY; returns the number of rows written."""
    query = (
        f"copy (select {CSV_COLUMNS} from ({RUN_FINDINGS}) as run_findings "
        "order by status, money_impact desc nulls last, finding_id) to stdout with (format csv, "
        "header true)"
    )
    with conn.cursor() as cur, path.open("wb") as handle:
        with cur.copy(query, params) as copy:  # type: ignore[arg-type]
            for chunk in copy:
                handle.write(chunk)
        row = cur.execute(
            f"select count(*) from ({RUN_FINDINGS}) as run_findings",  # type: ignore[arg-type]
            params,
        ).fetchone()
    return int(row[0]) if row else 0


def reverse_etl_fixes(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    """What reverse ETL fixed: findings this run resolved that had a verified write in rev.outbox.

    Reverse ETL is a later stage; until rev.outbox exists the report says so instead of failing.
    """
    if not _exists(conn, "rev.outbox") or not _rows(conn, "select 1 from rev.outbox limit 1"):
        return {"available": False, "rows": [], "note": "reverse ETL has not run yet"}
    columns = _columns(conn, "rev.outbox")
    state = "state" if "state" in columns else ("status" if "status" in columns else None)
    if not {"finding_id", "finding_ids"} & set(columns) or state is None:
        return {
            "available": False,
            "rows": [],
            "note": "rev.outbox has no finding_id/state columns to tie writes to findings",
        }
    # one write may correct several fields of a record: rev.outbox.finding_ids holds them all
    tie = (
        "f.finding_id = any(o.finding_ids)"
        if "finding_ids" in columns
        else "o.finding_id = f.finding_id"
    )
    rows = _rows(
        conn,
        f"""
        select f.entity, f.system, f.field, count(*) as fixed,
               upper(f.currency) as currency, sum(f.money_impact) as money
        from recon.findings as f
        where f.resolved_run_id = %(run)s and exists (
            select 1 from rev.outbox as o
            where {tie} and o.{state} in ('verified', 'acknowledged')
        )
        group by f.entity, f.system, f.field, upper(f.currency)
        order by fixed desc
        """,
        {"run": run_id},
    )
    pending = _rows(
        conn,
        f"select {state} as state, count(*) as writes from rev.outbox group by 1 order by 1",
    )
    dead = (
        _rows(
            conn,
            f"""
            select system, entity, coalesce(entity_ref, record_key) as record,
                   array_to_string(fields, ', ') as fields, attempts,
                   left(coalesce(last_error, ''), 160) as last_error
            from rev.outbox where {state} = 'dead'
            order by system, entity, record
            limit 500
            """,
        )
        if "last_error" in columns
        else []
    )
    skipped = (
        _rows(
            conn,
            """select system, entity, reason from rev.skips where run_id = %(run)s
               order by system, entity""",
            {"run": run_id},
        )
        if _exists(conn, "rev.skips")
        else []
    )
    return {
        "available": True,
        "rows": rows,
        "states": pending,
        "dead": dead,
        "skipped": skipped,
        "note": "",
    }


def validation_warnings(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    if not _exists(conn, "ops.validation_results"):
        return {"available": False, "rows": [], "note": "validation has not run yet"}
    columns = _columns(conn, "ops.validation_results")
    wanted = [
        c
        for c in (
            "suite",
            "expectation",
            "severity",
            "entity",
            "observed_value",
            "unexpected_count",
            "failing_keys",
            "sample_keys",
            "description",
        )
        if c in columns
    ]
    if "success" not in columns or "run_id" not in columns:
        return {"available": False, "rows": [], "note": "ops.validation_results lacks run_id"}
    select = ", ".join(
        f"left(cast({c} as text), 300) as {c}" if c in ("failing_keys", "sample_keys") else c
        for c in wanted
    )
    order = "severity, " if "severity" in columns else ""
    rows = _rows(
        conn,
        f"select {select} from ops.validation_results where run_id = %s and not success "
        f"order by {order}1 limit 500",
        (run_id,),
    )
    return {"available": True, "rows": rows, "note": ""}


def gather(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    """Everything the page shows, aggregated in the warehouse."""
    runs = _rows(conn, "select * from recon.drift_runs where run_id = %s", (run_id,))
    if not runs:
        raise ReportError(f"run {run_id!r} has not been reconciled (no recon.drift_runs row)")
    run = runs[0]
    params = {"run": run_id, "at": run["reconciled_at"]}
    scope = f"({RUN_FINDINGS}) as f"
    data: dict[str, Any] = {"run": run, "generated_at": datetime.now().astimezone()}
    data["money"] = _rows(
        conn,
        f"""select system, upper(currency) as currency, count(*) as findings,
                   sum(money_impact) as money
            from {scope} where status = 'open' and money_impact is not null
            group by system, upper(currency) order by currency, money desc""",
        params,
    )
    data["matrix"] = _rows(
        conn,
        f"""select entity, kind, system,
                   count(*) filter (where status = 'open') as open,
                   count(*) filter (where new_in_run) as new,
                   count(*) filter (where status = 'resolved') as resolved,
                   count(*) filter (where status = 'waived') as waived
            from {scope} group by entity, kind, system order by entity, kind, system""",
        params,
    )
    data["ages"] = _rows(
        conn,
        f"""select
                case
                    when days_open < 1 then 'under 1 day'
                    when days_open < 7 then '1-7 days'
                    when days_open < 30 then '7-30 days'
                    when days_open < 90 then '30-90 days'
                    else 'over 90 days'
                end as age,
                min(days_open) as sort_key,
                count(*) as findings,
                coalesce(upper(currency), 'no money') as currency,
                sum(money_impact) as money
            from {scope} where status = 'open'
            group by 1, 4 order by 2, 4""",
        params,
    )
    detail = f"""
        select finding_id, status, entity, system, kind, field, entity_ref, canonical_value,
               system_value, currency, money_impact, days_open, first_seen_at, waived_by,
               waive_reason
        from {scope}
    """
    data["open_rows"] = _rows(
        conn,
        detail + " where status = 'open' order by money_impact desc nulls last, days_open desc"
        f" limit {TABLE_ROWS}",
        params,
    )
    data["new_rows"] = _rows(
        conn,
        detail + f" where new_in_run order by money_impact desc nulls last limit {TABLE_ROWS}",
        params,
    )
    data["resolved_rows"] = _rows(
        conn,
        detail + " where status = 'resolved' order by money_impact desc nulls last"
        f" limit {TABLE_ROWS}",
        params,
    )
    data["waived_rows"] = _rows(
        conn, detail + f" where status = 'waived' order by finding_id limit {TABLE_ROWS}", params
    )
    data["balances"] = _rows(
        conn,
        """select check_name, outcome, currency, count(*) as subjects,
                  sum(abs(difference)) as amount
           from recon.balances where run_id = %s
           group by check_name, outcome, currency order by check_name, outcome, currency""",
        (run_id,),
    )
    data["balance_rows"] = _rows(
        conn,
        f"""select check_name, outcome, subject_ref, customer_id, currency, expected, actual,
                   difference
            from recon.balances
            where run_id = %s and outcome not in ('unpaid')
            order by abs(difference) desc limit {TABLE_ROWS}""",
        (run_id,),
    )
    data["history"] = _rows(
        conn,
        """select * from (
               select run_id, reconciled_at, open_findings, new_findings, resolved_findings,
                      waived_findings, money_at_stake, alert_status
               from recon.drift_runs where reconciled_at <= %s
               order by reconciled_at desc limit 60
           ) as recent order by reconciled_at""",
        (run["reconciled_at"],),
    )
    data["reverse_etl"] = reverse_etl_fixes(conn, run_id)
    data["validation"] = validation_warnings(conn, run_id)
    data["charts"] = {
        "findings": charts.line_chart(
            [r["run_id"] for r in data["history"]],
            {
                "open": [r["open_findings"] for r in data["history"]],
                "new": [r["new_findings"] for r in data["history"]],
                "resolved": [r["resolved_findings"] for r in data["history"]],
            },
            "Findings per run",
        ),
        "money": charts.line_chart(
            [r["run_id"] for r in data["history"]],
            money_series(data["history"]),
            "Money at stake per run, by currency",
        ),
    }
    return data


def money_series(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    currencies = sorted({c for r in history for c in (r["money_at_stake"] or {})})
    return {c: [float((r["money_at_stake"] or {}).get(c, 0)) for r in history] for c in currencies}


def report(run_id: str, url: str | None = None, directory: Path | None = None) -> dict[str, Path]:
    """Write <reports>/<run_id>/drift_report.html and findings.csv; returns their paths."""
    url = db.role_url("reconciler", url)
    folder = (directory or reports_dir()) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / "drift_report.html", folder / "findings.csv"
    with db.connect(url) as conn:
        data = gather(conn, run_id)
        params = {"run": run_id, "at": data["run"]["reconciled_at"]}
        data["csv_rows"] = write_csv(conn, csv_path, params)
        data["csv_name"] = csv_path.name
        html_path.write_text(render(data), encoding="utf-8")
        conn.execute(
            """update recon.drift_runs
               set report_html = %s, report_csv = %s, reported_at = now()
               where run_id = %s""",
            (str(html_path), str(csv_path), run_id),
        )
        conn.commit()
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "open_findings": data["run"]["open_findings"],
                "new_findings": data["run"]["new_findings"],
                "resolved_findings": data["run"]["resolved_findings"],
                "money_at_stake": data["run"]["money_at_stake"],
                "alert_status": data["run"]["alert_status"],
                "csv_rows": data["csv_rows"],
            },
            indent=2,
        )
    )
    return {"html": html_path, "csv": csv_path}
