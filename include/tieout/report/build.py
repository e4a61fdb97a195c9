"""The drift report of a run: what to do first, breaks, receivables, match rates, every finding.

Every number comes from one REPEATABLE READ snapshot: the run's findings are materialised once
into a temporary table and every card, heading, table, the CSV and the workbook are derived from
it, so a waiver made while the report is built can never make them disagree. The CSV is streamed
with COPY, so a million findings never sit in Python memory. It must never change a finding.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tieout import db
from tieout.config import Config, ConfigError, load_config
from tieout.paths import reports_dir
from tieout.report import actions, charts, exports
from tieout.report.page import render

TABLE_ROWS = 1000  # rows per findings table on the page; the CSV and workbook have every one
GROUP_ROWS = 200  # rows listed under each "what to do" line
TREND_RUNS = 30

# The findings a run saw (open or waived at the time) plus those it resolved, as of that run,
# and those it could not compare because a source they depend on failed (stale, as last seen).
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
    entity_key,
    finding_key,
    system_keys,
    source_of_truth,
    canonical_value,
    system_value,
    upper(currency) as currency,
    money_impact,
    first_seen_at,
    last_seen_at,
    round(extract(epoch from (%(at)s::timestamptz - first_seen_at)) / 86400.0, 2) as days_open,
    resolved_at,
    waived_by,
    waived_at,
    waive_reason,
    stale_since
from recon.findings
where
    (first_seen_at <= %(at)s and last_seen_at >= %(at)s)
    or resolved_run_id = %(run)s
    -- not seen by the run because a source it depends on failed: shown as last seen
    or (first_seen_at <= %(at)s and status <> 'resolved' and stale_since <= %(at)s)
"""

# What happens to each finding: the newest outbox write that carries it, else what reverse ETL
# will do (a writable field) or a person must (anything else).
MATERIALISE = """
create temp table report_findings on commit drop as
with

run_findings as ({run_findings}),

writes as (
    select distinct on (linked.finding_id)
        linked.finding_id,
        o.state as write_state,
        o.held_reason,
        o.last_error
    from rev.outbox as o
    cross join lateral unnest(
        case when cardinality(o.finding_ids) > 0 then o.finding_ids else array[o.finding_id] end
    ) as linked (finding_id)
    where linked.finding_id is not null
    order by linked.finding_id, o.outbox_id desc
),

names as ({names}),

classified as (
    select
        f.*,
        w.write_state,
        f.kind = 'value_mismatch'
        and f.system || '/' || f.entity || '/' || f.field = any(%(writable)s) as writable,
        s.reason as skip_reason,
        w.held_reason,
        w.last_error,
        n.customer_no,
        n.customer_name
    from run_findings as f
    left join writes as w on f.finding_id = w.finding_id
    left join rev.skips as s
        on s.run_id = %(run)s and f.system = s.system and f.entity = s.entity
    left join names as n on f.entity = n.entity and n.record_id = ({key})
)

select
    *,
    case
        when status = 'waived' then 'waived'
        when status = 'resolved' and write_state = 'verified' then 'fixed'
        when status = 'resolved' then 'resolved'
        when write_state in ('held', 'failed', 'dead') then write_state
        when write_state = 'discarded' then 'needs_person'
        when write_state in ('planned', 'sent', 'acknowledged', 'verified') then 'queued'
        when writable and skip_reason is not null then 'held'
        when writable then 'queued'
        else 'needs_person'
    end as action,
    case
        when status = 'waived' then waive_reason
        when status <> 'open' then null
        when write_state = 'held' then coalesce(held_reason, 'waiting for approval')
        when write_state in ('failed', 'dead') then left(coalesce(last_error, 'no answer'), 200)
        when write_state = 'discarded' then 'a person discarded the correction'
        when write_state = 'planned' then 'planned, sent on the next reverse ETL run'
        when write_state in ('sent', 'acknowledged') then 'sent, read back on the next run'
        when write_state = 'verified' then 'written and read back; clears on the next reconcile'
        when writable and skip_reason is not null then 'reverse ETL skipped it: ' || skip_reason
        when writable then 'reverse ETL plans it on its next run'
    end as action_reason
from classified
"""

ROW_COLUMNS = """
    finding_id, status, action, action_reason, new_in_run, entity, system, kind, field,
    entity_ref, customer_no, customer_name, system_keys ->> 0 as system_key, canonical_value,
    system_value, currency, money_impact, days_open, first_seen_at, waived_by, waive_reason
"""

CSV_COLUMNS = (
    "finding_id", "status", "new_in_run", "entity", "system", "kind", "field", "entity_ref",
    "finding_key", "system_keys", "source_of_truth", "canonical_value", "system_value",
    "currency", "money_impact", "first_seen_at", "last_seen_at", "days_open", "resolved_at",
    "waived_by", "waived_at", "waive_reason", "customer_no", "customer_name", "action",
    "action_reason", "stale_since",
)  # fmt: skip

BREAK_OUTCOMES = list(actions.BREAKS)
OPEN_ACTIONS = ("needs_person", "dead", "failed", "held", "queued")


class ReportError(RuntimeError):
    """The run cannot be reported (it was never reconciled)."""


def _rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def _exists(conn: psycopg.Connection[Any], relation: str) -> bool:
    """The relation exists and this role may read it (a stage role may not see every schema)."""
    row = conn.execute(
        """select case when to_regclass(%(r)s) is null then false
                       else has_table_privilege(to_regclass(%(r)s), 'select') end""",
        {"r": relation},
    ).fetchone()
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


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def names_sql(conn: psycopg.Connection[Any], config: Config) -> str:
    """(entity, record_id, customer_no, customer_name) for every record that has a customer."""
    empty = (
        "select cast(null as text) as entity, cast(null as text) as record_id, "
        "cast(null as text) as customer_no, cast(null as text) as customer_name where false"
    )
    customer = config.entities.get("customer")
    if customer is None or not _exists(conn, customer.table):
        return empty
    ccols = _columns(conn, customer.table)
    if not {customer.key, "name"} <= ccols:
        return empty
    number = "cast(c.erp_id as text)" if "erp_id" in ccols else f"cast(c.{customer.key} as text)"
    parts = [
        f"select 'customer' as entity, cast(c.{customer.key} as text) as record_id, "
        f"{number} as customer_no, cast(c.name as text) as customer_name "
        f"from {customer.table} as c"
    ]
    for name, entity in config.entities.items():
        if name == "customer" or not _exists(conn, entity.table):
            continue
        if "customer_id" in _columns(conn, entity.table):
            parts.append(
                f"select {_literal(name)}, cast(t.{entity.key} as text), {number}, "
                f"cast(c.name as text) from {entity.table} as t "
                f"left join {customer.table} as c on c.{customer.key} = t.customer_id"
            )
    return " union all ".join(parts)


def key_sql(config: Config) -> str:
    cases = " ".join(
        f"when {_literal(name)} then f.entity_key ->> {_literal(entity.key)}"
        for name, entity in config.entities.items()
    )
    return f"case f.entity {cases} end" if cases else "cast(null as text)"


def writable(config: Config) -> list[str]:
    return [
        f"{t.system}/{t.entity}/{field}" for t in config.reverse_etl.targets for field in t.fields
    ]


class Links:
    """The web address of a record in its own system, from the sources' record_urls."""

    def __init__(self, config: Config):
        self.sources = config.sources
        self.masters = {name: e.master for name, e in config.entities.items()}

    def finding(self, row: dict[str, Any]) -> tuple[str | None, str]:
        system, entity = row["system"], row["entity"]
        source = self.sources.get(system)
        if source and row.get("system_key"):
            url = source.record_url(entity, row["system_key"])
            if url:
                return url, actions.system_name(system)
        return self.master(entity, row.get("entity_ref"))

    def master(self, entity: str, key: Any) -> tuple[str | None, str]:
        master = self.masters.get(entity, "")
        source = self.sources.get(master)
        url = source.record_url(entity, str(key)) if source and key else None
        return url, actions.system_name(master)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _add(target: dict[str, Decimal], currency: str | None, value: Any) -> None:
    if currency is not None and value is not None:
        target[currency] = target.get(currency, Decimal(0)) + _money(value)


def summarise(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """Cards, headings and the money table, all from the one aggregate of the snapshot."""
    counts: dict[str, int] = defaultdict(int)
    money_open: dict[str, Decimal] = {}
    by_system: dict[tuple[str, str], dict[str, Any]] = {}
    matrix: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in summary:
        n = int(r["findings"])
        counts[r["status"]] += n
        counts["action:" + r["action"]] += n
        if r["new_in_run"]:
            counts["new"] += n
        key = (r["entity"], r["kind"], r["system"])
        cell = matrix.setdefault(
            key,
            {
                "entity": r["entity"],
                "kind": r["kind"],
                "kind_name": actions.kind_name(r["kind"]),
                "system": r["system"],
                "open": 0,
                "new": 0,
                "resolved": 0,
                "waived": 0,
            },
        )
        cell[r["status"]] += n
        cell["new"] += n if r["new_in_run"] else 0
        if r["status"] == "open" and r["currency"] is not None and r["money"] is not None:
            _add(money_open, r["currency"], r["money"])
            entry = by_system.setdefault(
                (r["currency"], r["system"]),
                {"currency": r["currency"], "system": r["system"], "findings": 0, "money": 0},
            )
            entry["findings"] += int(r["with_money"])
            entry["money"] = _money(entry["money"]) + _money(r["money"])
    return {
        "counts": dict(counts),
        "money_open": dict(sorted(money_open.items())),
        "money_by_system": sorted(
            by_system.values(), key=lambda e: (e["currency"], -float(e["money"]))
        ),
        "matrix": [matrix[k] for k in sorted(matrix)],
    }


def action_groups(
    conn: psycopg.Connection[Any], config: Config, links: Links
) -> list[dict[str, Any]]:
    """One line per system, entity, kind (and field), and state, with its rows."""
    masters = {name: e.master for name, e in config.entities.items()}
    groups = _rows(
        conn,
        """select system, entity, kind,
                  case when kind = 'value_mismatch' then field else '' end as field,
                  action as state, count(*) as count,
                  mode() within group (order by action_reason) as reason,
                  count(distinct action_reason) as reasons
           from report_findings where action <> 'waived'
           group by 1, 2, 3, 4, 5""",
    )
    money = _rows(
        conn,
        """select system, entity, kind,
                  case when kind = 'value_mismatch' then field else '' end as field,
                  action as state, currency, sum(money_impact) as money
           from report_findings
           where action <> 'waived' and currency is not null and money_impact is not null
           group by 1, 2, 3, 4, 5, 6 order by 6""",
    )
    rows = _rows(
        conn,
        f"""select * from (
                select {ROW_COLUMNS},
                       case when kind = 'value_mismatch' then field else '' end as group_field,
                       row_number() over (
                           partition by system, entity, kind,
                               case when kind = 'value_mismatch' then field else '' end, action
                           order by money_impact desc nulls last, finding_id
                       ) as n
                from report_findings where action <> 'waived'
            ) as ranked where n <= {GROUP_ROWS} order by finding_id""",
    )
    by_key: dict[tuple[str, ...], dict[str, Any]] = {}
    for g in groups:
        key = (g["system"], g["entity"], g["kind"], g["field"], g["state"])
        reason = g["reason"] or ""
        if g["state"] == "needs_person" and g["kind"] == "value_mismatch":
            spec = config.entities.get(g["entity"])
            truth = (
                spec.fields[g["field"]].source_of_truth
                if spec and g["field"] in spec.fields
                else None
            )
            reason = (
                f"{actions.system_name(truth or '')} is its source of truth"
                if truth == g["system"]
                else f"no reverse ETL target writes it to {actions.system_name(g['system'])}"
            )
        elif g["reasons"] and int(g["reasons"]) > 1:
            reason += f" (and {int(g['reasons']) - 1:,} other reasons)"
        by_key[key] = {
            **g,
            "count": int(g["count"]),
            "reason": reason,
            "money": {},
            "rows": [],
            "kind_name": actions.kind_name(g["kind"]),
            "state_name": actions.STATE_NAMES.get(g["state"], g["state"]),
        }
    for m in money:
        key = (m["system"], m["entity"], m["kind"], m["field"], m["state"])
        _add(by_key[key]["money"], m["currency"], m["money"])
    for r in rows:
        key = (r["system"], r["entity"], r["kind"], r["group_field"], r["action"])
        url, where = links.finding(r)
        by_key[key]["rows"].append(_shown({**r, "record_url": url, "record_system": where}))
    order = {state: i for i, state in enumerate(actions.STATE_ORDER)}
    found = sorted(
        by_key.values(),
        key=lambda g: (
            g["system"],
            order.get(g["state"], 99),
            -sum(float(v) for v in g["money"].values()),
            -g["count"],
            g["entity"],
            g["kind"],
            g["field"],
        ),
    )
    for n, g in enumerate(found):
        g["anchor"] = f"do-{n + 1}"
        g["sentence"] = actions.sentence(g, masters)
        g["shown"] = len(g["rows"])
    return found


def balance_rows(conn: psycopg.Connection[Any], run_id: str, config: Config) -> str:
    """recon.balances of the run with the customer's number and name instead of its hash."""
    customer = config.entities.get("customer")
    if (
        customer
        and _exists(conn, customer.table)
        and {"erp_id", "name"} <= _columns(conn, customer.table)
    ):
        return f"""
            select b.*, cast(c.erp_id as text) as customer_no, c.name as customer_name
            from recon.balances as b
            left join {customer.table} as c on c.{customer.key} = b.customer_id
            where b.run_id = {_literal(run_id)}"""
    return f"""select b.*, cast(null as text) as customer_no, cast(null as text) as customer_name
               from recon.balances as b where b.run_id = {_literal(run_id)}"""


def breaks(
    conn: psycopg.Connection[Any], run_id: str, config: Config, links: Links
) -> list[dict[str, Any]]:
    """Balance breaks (money that does not add up), a group per outcome with its rows."""
    rows = _rows(
        conn,
        """select * from report_balances where outcome = any(%s)
           order by outcome, abs(difference) desc, subject_ref""",
        (BREAK_OUTCOMES,),
    )
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        system, entity = actions.BREAKS[r["outcome"]]
        group = groups.setdefault(
            r["outcome"],
            {
                "system": system,
                "entity": entity,
                "kind": r["outcome"],
                "field": "",
                "state": "needs_person",
                "state_name": actions.STATE_NAMES["needs_person"],
                "kind_name": actions.kind_name(r["outcome"]),
                "count": 0,
                "money": {},
                "rows": [],
                "reason": "",
            },
        )
        group["count"] += 1
        _add(group["money"], r["currency"], abs(r["difference"] or 0))
        url, where = links.master(entity, r["subject_ref"])
        if len(group["rows"]) < GROUP_ROWS:
            group["rows"].append(
                {
                    **r,
                    "amount": abs(r["difference"] or 0),
                    "record_url": url,
                    "record_system": where,
                    "outcome_name": actions.kind_name(r["outcome"]),
                }
            )
    found = sorted(groups.values(), key=lambda g: -g["count"])
    for n, g in enumerate(found):
        g["anchor"] = f"break-{n + 1}"
        g["sentence"] = actions.sentence(g)
        g["shown"] = len(g["rows"])
    return found


AGING_BUCKETS = ("not_due", "1-30", "31-60", "61-90", "90+")
BUCKET_NAMES = {
    "not_due": "not yet due",
    "1-30": "1-30 days overdue",
    "31-60": "31-60 days overdue",
    "61-90": "61-90 days overdue",
    "90+": "over 90 days overdue",
    "unknown": "due date unknown",
}


def receivables(conn: psycopg.Connection[Any], run_id: str, config: Config) -> dict[str, Any]:
    """Ordinary unpaid and underpaid invoices by how overdue they are, apart from the breaks."""
    if _exists(conn, "finance.receivables_aging"):
        source = "finance.receivables_aging"
        buckets = _rows(
            conn,
            """select aging_bucket as bucket, upper(currency) as currency, count(*) as invoices,
                      sum(outstanding_amount) as outstanding
               from finance.receivables_aging group by 1, 2""",
        )
    else:
        source = "recon.balances"
        buckets = _rows(
            conn,
            """select 'unknown' as bucket, upper(currency) as currency, count(*) as invoices,
                      sum(-difference) as outstanding
               from recon.balances
               where run_id = %s and check_name = 'invoice_payments'
                 and outcome in ('unpaid', 'underpaid')
               group by 1, 2""",
            (run_id,),
        )
    order = {b: i for i, b in enumerate((*AGING_BUCKETS, "unknown"))}
    buckets.sort(key=lambda b: (b["currency"] or "", order.get(b["bucket"], 9)))
    for b in buckets:
        b["bucket_name"] = BUCKET_NAMES.get(b["bucket"], b["bucket"])
    overpaid = _rows(
        conn,
        f"""select subject_ref, customer_no, customer_name, currency, expected, actual,
                   difference as amount
            from report_balances
            where check_name = 'invoice_payments' and outcome = 'overpaid'
            order by difference desc limit {TABLE_ROWS}""",
    )
    totals: dict[str, Decimal] = {}
    pivot: dict[str, dict[str, Any]] = {}
    for b in buckets:
        _add(totals, b["currency"], b["outstanding"])
        line = pivot.setdefault(b["bucket"], {"bucket_name": b["bucket_name"], "invoices": 0})
        line["invoices"] += int(b["invoices"])
        line[b["currency"]] = b["outstanding"]
    return {
        "source": source,
        "buckets": buckets,
        "pivot": sorted(
            pivot.values(),
            key=lambda p: order.get(
                next(k for k, v in BUCKET_NAMES.items() if v == p["bucket_name"]), 9
            ),
        ),
        "currencies": sorted(totals),
        "totals": totals,
        "overpaid": overpaid,
    }


def match_rates(
    conn: psycopg.Connection[Any], run: dict[str, Any], config: Config
) -> dict[str, Any]:
    """Records that agree / records compared, per entity and system, for recent runs."""
    history = _rows(
        conn,
        """select run_id, reconciled_at, entities from recon.drift_runs
           where reconciled_at <= %s order by reconciled_at desc limit %s""",
        (run["reconciled_at"], TREND_RUNS),
    )
    history.reverse()
    counted = _rows(
        conn,
        """select r.run_id, f.entity, f.system,
                  count(distinct coalesce(f.entity_ref, f.system_keys ->> 0, f.finding_key::text))
                      as disagree,
                  count(distinct f.system_keys ->> 0) filter (where f.kind = 'extra_in_system')
                      as extras
           from recon.drift_runs as r
           join recon.findings as f
               on f.first_seen_at <= r.reconciled_at and f.last_seen_at >= r.reconciled_at
           where r.run_id = any(%s)
           group by 1, 2, 3""",
        ([h["run_id"] for h in history],),
    )
    found = {(c["run_id"], c["entity"], c["system"]): c for c in counted}
    series: dict[str, list[float | None]] = {}
    current: list[dict[str, Any]] = []
    for index, h in enumerate(history):
        for name, entity in sorted(config.entities.items()):
            records = ((h["entities"] or {}).get(name) or {}).get("records")
            if not records:
                continue
            for system in sorted(entity.systems):
                c = found.get((h["run_id"], name, system), {"disagree": 0, "extras": 0})
                compared = int(records) + int(c["extras"])
                agree = max(compared - int(c["disagree"]), 0)
                label = f"{name} · {actions.system_name(system)}"
                values = series.setdefault(label, [None] * len(history))
                values[index] = round(100.0 * agree / compared, 2) if compared else None
                if h["run_id"] == run["run_id"]:
                    current.append(
                        {
                            "entity": name,
                            "system": system,
                            "system_name": actions.system_name(system),
                            "agree": agree,
                            "compared": compared,
                            "rate": round(100.0 * agree / compared, 2) if compared else None,
                        }
                    )
    return {
        "current": current,
        "series": series,
        "labels": charts.date_labels([h["reconciled_at"] for h in history]),
    }


def reverse_etl_summary(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    states = _rows(conn, "select state, count(*) as writes from rev.outbox group by 1 order by 1")
    held = _rows(
        conn,
        f"""select outbox_id, system, entity, coalesce(entity_ref, record_key) as record,
                   array_to_string(fields, ', ') as fields, held_reason, held_at
            from rev.outbox where state = 'held'
            order by held_at desc nulls last, outbox_id limit {TABLE_ROWS}""",
    )
    dead = _rows(
        conn,
        f"""select outbox_id, system, entity, coalesce(entity_ref, record_key) as record,
                   array_to_string(fields, ', ') as fields, attempts,
                   left(coalesce(last_error, ''), 200) as last_error
            from rev.outbox where state = 'dead'
            order by system, entity, record limit {TABLE_ROWS}""",
    )
    skipped = _rows(
        conn,
        "select system, entity, reason from rev.skips where run_id = %s order by 1, 2",
        (run_id,),
    )
    return {"states": states, "held": held, "dead": dead, "skipped": skipped}


def validation_warnings(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    if not _exists(conn, "ops.validation_results"):
        return {"available": False, "rows": [], "columns": [], "note": "validation has not run"}
    columns = _columns(conn, "ops.validation_results")
    if "success" not in columns or "run_id" not in columns:
        return {"available": False, "rows": [], "columns": [], "note": "no run_id column"}
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
    select = ", ".join(
        f"left(cast({c} as text), 300) as {c}"
        if c in ("failing_keys", "sample_keys", "observed_value")
        else c
        for c in wanted
    )
    order = "severity, " if "severity" in columns else ""
    rows = _rows(
        conn,
        f"select {select} from ops.validation_results where run_id = %s and not success "
        f"order by {order}1 limit 500",
        (run_id,),
    )
    return {"available": True, "rows": rows, "columns": wanted, "note": ""}


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row["agreed"], row["in_system"] = actions.shown_values(
        row["kind"], row.get("canonical_value"), row.get("system_value")
    )
    return row


def finding_rows(
    conn: psycopg.Connection[Any], where: str, order: str, links: Links, limit: int = TABLE_ROWS
) -> list[dict[str, Any]]:
    rows = _rows(
        conn,
        f"select {ROW_COLUMNS} from report_findings where {where} order by {order} limit {limit}",
    )
    for r in rows:
        r["record_url"], r["record_system"] = links.finding(r)
        r["kind_name"] = actions.kind_name(r["kind"])
        r["action_name"] = actions.STATE_NAMES.get(r["action"], r["action"])
        _shown(r)
    return rows


def name_references(
    conn: psycopg.Connection[Any], config: Config, rows: list[dict[str, Any]]
) -> None:
    """Show a value that is another entity's canonical id (an invoice's customer_id, say) as
    that record's business number and name, never as the id's hash."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        entity = (r.get("field") or "").removesuffix("_id")
        if r.get("field", "").endswith("_id") and entity in config.entities:
            wanted[entity].update(v for v in (r["agreed"], r["in_system"]) if v)
    labels: dict[tuple[str, str], str] = {}
    for entity, ids in wanted.items():
        spec = config.entities[entity]
        if not _exists(conn, spec.table):
            continue
        columns = _columns(conn, spec.table)
        number = f"{spec.master}_id" if f"{spec.master}_id" in columns else spec.key
        name = "name" if "name" in columns else "null"
        for key, shown, called in conn.execute(
            f"select cast({spec.key} as text), cast({number} as text), {name} "  # type: ignore[arg-type]
            f"from {spec.table} where cast({spec.key} as text) = any(%s)",
            (list(ids),),
        ):
            labels[(entity, key)] = f"{shown} {called}" if called else str(shown)
    for r in rows:
        entity = (r.get("field") or "").removesuffix("_id")
        for column in ("agreed", "in_system"):
            label = labels.get((entity, r[column]))
            if label:
                r[column] = label
            elif r.get("field", "").endswith("_id") and HASH_LIKE.match(r[column] or ""):
                r[column] = f"unknown {entity}"


HASH_LIKE = re.compile(r"^[0-9a-f]{32}$")


def gather(conn: psycopg.Connection[Any], run_id: str, config: Config) -> dict[str, Any]:
    """Everything the page, the CSV and the workbook show, from one snapshot of the warehouse.

    Call inside a REPEATABLE READ transaction; it creates the temporary table report_findings.
    """
    runs = _rows(conn, "select * from recon.drift_runs where run_id = %s", (run_id,))
    if not runs:
        raise ReportError(f"run {run_id!r} has not been reconciled (no recon.drift_runs row)")
    run = runs[0]
    params = {"run": run_id, "at": run["reconciled_at"], "writable": writable(config)}
    conn.execute(
        MATERIALISE.format(  # type: ignore[arg-type]
            run_findings=RUN_FINDINGS, names=names_sql(conn, config), key=key_sql(config)
        ),
        params,
    )
    conn.execute("analyze report_findings")
    conn.execute(
        "create temp table report_balances on commit drop as "  # type: ignore[arg-type]
        + balance_rows(conn, run_id, config)
    )
    links = Links(config)
    summary = _rows(
        conn,
        """select status, new_in_run, action, entity, system, kind, field, currency,
                  count(*) as findings, sum(money_impact) as money,
                  count(money_impact) as with_money
           from report_findings group by 1, 2, 3, 4, 5, 6, 7, 8""",
    )
    data: dict[str, Any] = {
        "run": run,
        "generated_at": datetime.now().astimezone(),
        "csv_columns": CSV_COLUMNS,
        "break_outcomes": BREAK_OUTCOMES,
        **summarise(summary),
    }
    data["actions"] = action_groups(conn, config, links)
    data["breaks"] = breaks(conn, run_id, config, links)
    data["receivables"] = receivables(conn, run_id, config)
    data["ages"] = _rows(
        conn,
        """select
                case
                    when days_open < 1 then 'under 1 day'
                    when days_open < 7 then '1-7 days'
                    when days_open < 30 then '7-30 days'
                    when days_open < 90 then '30-90 days'
                    else 'over 90 days'
                end as age,
                min(days_open) as sort_key,
                count(*) as findings,
                coalesce(currency, '—') as currency,
                sum(money_impact) as money
            from report_findings where status = 'open'
            group by 1, 4 order by 2, 4""",
    )
    by_money = "money_impact desc nulls last, days_open desc, finding_id"
    data["tables"] = {
        "open": finding_rows(conn, "status = 'open'", by_money, links),
        "new": finding_rows(conn, "new_in_run", by_money, links),
        "resolved": finding_rows(conn, "status = 'resolved'", by_money, links),
        "waived": finding_rows(conn, "status = 'waived'", "finding_id", links),
    }
    name_references(
        conn,
        config,
        [r for g in data["actions"] for r in g["rows"]]
        + [r for rows in data["tables"].values() for r in rows],
    )
    data["history"] = _rows(
        conn,
        """select * from (
               select run_id, reconciled_at, open_findings, new_findings, resolved_findings,
                      waived_findings, money_at_stake, alert_status
               from recon.drift_runs where reconciled_at <= %s
               order by reconciled_at desc limit %s
           ) as recent order by reconciled_at""",
        (run["reconciled_at"], TREND_RUNS),
    )
    data["match"] = match_rates(conn, run, config)
    data["reverse_etl"] = reverse_etl_summary(conn, run_id)
    data["validation"] = validation_warnings(conn, run_id)
    labels = charts.date_labels([r["reconciled_at"] for r in data["history"]])
    data["charts"] = {
        "findings": charts.line_chart(
            labels,
            {
                "open": [r["open_findings"] for r in data["history"]],
                "new": [r["new_findings"] for r in data["history"]],
                "resolved": [r["resolved_findings"] for r in data["history"]],
            },
            "Findings per run (as each run counted them)",
        ),
        "money": charts.line_chart(
            labels, money_series(data["history"]), "Money in open differences per run"
        ),
        "match": charts.line_chart(
            data["match"]["labels"],
            data["match"]["series"],
            "Match rate per entity and system (%)",
            zoom=True,
        ),
    }
    return data


def money_series(history: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    currencies = sorted({c for r in history for c in (r["money_at_stake"] or {})})
    return {c: [float((r["money_at_stake"] or {}).get(c, 0)) for r in history] for c in currencies}


def write_csv(conn: psycopg.Connection[Any], path: Path) -> int:
    """Stream report_findings to CSV with COPY, formulas neutralised; returns the rows written."""
    select = ", ".join(exports.csv_safe_sql(c) for c in CSV_COLUMNS)
    query = (
        f"copy (select {select} from report_findings "
        "order by status, money_impact desc nulls last, finding_id) to stdout with (format csv, "
        "header true)"
    )
    with conn.cursor() as cur, path.open("wb") as handle:
        with cur.copy(query) as copy:  # type: ignore[arg-type]
            for chunk in copy:
                handle.write(chunk)
        row = cur.execute("select count(*) from report_findings").fetchone()
    return int(row[0]) if row else 0


def report(
    run_id: str,
    url: str | None = None,
    directory: Path | None = None,
    config: Config | None = None,
) -> dict[str, Path]:
    """Write <reports>/<run_id>/drift_report.html, findings.csv and drift_report.xlsx."""
    url = db.role_url("reconciler", url)
    if config is None:
        try:
            config = load_config()
        except ConfigError as exc:
            raise ReportError(f"the configuration is invalid:\n{exc}") from None
    folder = (directory or reports_dir()) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / "drift_report.html", folder / "findings.csv"
    xlsx_path = folder / "drift_report.xlsx"
    with db.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            conn.execute("set local timezone = 'UTC'")
            data = gather(conn, run_id, config)
            data["csv_rows"] = write_csv(conn, csv_path)
            exports.write_workbook(conn, xlsx_path, data)
        data["csv_name"], data["xlsx_name"] = csv_path.name, xlsx_path.name
        html_path.write_text(render(data), encoding="utf-8")
        conn.isolation_level = None
        with conn.transaction():
            conn.execute(
                """update recon.drift_runs
                   set report_html = %s, report_csv = %s, report_xlsx = %s, reported_at = now()
                   where run_id = %s""",
                (str(html_path), str(csv_path), str(xlsx_path), run_id),
            )
    counts = data["counts"]
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "open_findings": counts.get("open", 0),
                "new_findings": counts.get("new", 0),
                "resolved_findings": counts.get("resolved", 0),
                "waived_findings": counts.get("waived", 0),
                "needs_person": counts.get("action:needs_person", 0),
                "money_at_stake": {k: float(v) for k, v in data["money_open"].items()},
                "alert_status": data["run"]["alert_status"],
                "csv_rows": data["csv_rows"],
                "source_failures": data["run"].get("stale_sources") or [],
                "stale_findings": data["run"].get("stale_findings") or 0,
            },
            indent=2,
        )
    )
    return {"html": html_path, "csv": csv_path, "xlsx": xlsx_path}
