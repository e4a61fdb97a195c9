"""The drift report's HTML, rendered from Jinja2 templates with autoescape on.

One self-contained page (inline CSS, SVG and a few lines of vanilla JS for search, sort and
opening a linked section); nothing is ever loaded from the network, and every value is escaped
by the template engine; only the SVG charts, which escape their own text, are marked safe.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tieout.report import actions

# (key, header, kind): kind says how the cell is shown and aligned
Column = tuple[str, str, str]

# what differs and since when: shown alike in the findings table and in each group's table
DIFFERENCE_COLUMNS: list[Column] = [
    ("field", "field", "field"),
    ("money_impact", "money", "money"),
    ("currency", "cur.", "text"),
    ("agreed", "agreed value", "text"),
    ("in_system", "value in system", "text"),
    ("days_open", "days open", "days"),
]
FINDING_COLUMNS: list[Column] = [
    ("finding_id", "id", "int"),
    ("entity", "entity", "text"),
    ("entity_ref", "record", "record"),
    ("customer_no", "customer", "customer"),
    ("system", "system", "system"),
    ("kind", "difference", "kind"),
    *DIFFERENCE_COLUMNS,
    ("action", "state", "state"),
]
GROUP_COLUMNS: list[Column] = [
    ("finding_id", "id", "int"),
    ("entity_ref", "record", "record"),
    ("customer_no", "customer", "customer"),
    *DIFFERENCE_COLUMNS,
    ("action_reason", "why", "text"),
]
BREAK_COLUMNS: list[Column] = [
    ("subject_ref", "record", "record"),
    ("customer_no", "customer", "customer"),
    ("currency", "cur.", "text"),
    ("expected", "expected", "money"),
    ("actual", "actual", "money"),
    ("amount", "difference", "money"),
]
NUMERIC = {"int", "money", "days", "rate"}


def money(value: Any, currency: str | None = None) -> str:
    if value is None:
        return ""
    text = f"{float(value):,.2f}"
    return f"{text} {currency}" if currency else text


def number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.2f}"


def moneys(amounts: dict[str, Any]) -> str:
    """{'EUR': 12.5, 'GBP': 3} -> '12.50 EUR · 3.00 GBP' (never summed across currencies)."""
    return " · ".join(money(v, c) for c, v in sorted(amounts.items()) if v is not None)


def sort_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return str(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tieout.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, number=number, moneys=moneys, sort_value=sort_value)
    env.globals.update(
        kind_name=actions.kind_name,
        system_name=actions.system_name,
        system_title=actions.system_title,
        field_name=actions.field_name,
        state_name=lambda s: actions.STATE_NAMES.get(s, s),
        NUMERIC=NUMERIC,
    )
    return env


ENVIRONMENT = _environment()


def render(data: dict[str, Any]) -> str:
    counts = data["counts"]
    systems: dict[str, list[dict[str, Any]]] = {}
    for group in data["actions"]:
        systems.setdefault(group["system"], []).append(group)
    open_actions = [
        g
        for g in data["actions"]
        if g["state"] in ("needs_person", "dead", "failed", "held", "queued")
    ]
    breaks_money: dict[str, Decimal] = {}
    for g in data["breaks"]:
        for c, v in g["money"].items():
            breaks_money[c] = breaks_money.get(c, Decimal(0)) + Decimal(str(v))
    in_progress = sum(counts.get("action:" + s, 0) for s in ("queued", "held", "failed", "dead"))
    cards = [
        {
            "id": "needs_person",
            "value": f"{counts.get('action:needs_person', 0):,}",
            "label": "differences need a person",
        },
        {
            "id": "in_progress",
            "value": f"{in_progress:,}",
            "label": "being corrected (queued, held, failed)",
        },
        {
            "id": "fixed",
            "value": f"{counts.get('action:fixed', 0):,}",
            "label": "fixed tonight, verified",
        },
        {
            "id": "breaks",
            "value": f"{sum(g['count'] for g in data['breaks']):,}",
            "label": "balance breaks",
        },
    ]
    with_money: dict[str, int] = {}
    for line in data["money_by_system"]:
        with_money[line["currency"]] = with_money.get(line["currency"], 0) + line["findings"]
    money_cards = [
        {
            "id": f"money-{c}",
            "currency": c,
            "value": money(v, c),
            "label": f"across {with_money.get(c, 0):,} differences",
        }
        for c, v in data["money_open"].items()
    ]
    totals = [
        ("open", "open differences"),
        ("new", "new this run"),
        ("resolved", "resolved this run"),
        ("waived", "waived"),
    ]
    template = ENVIRONMENT.get_template("drift_report.html.j2")
    context = dict(data)
    context.update(
        systems=systems,
        open_actions=open_actions,
        cards=cards,
        money_cards=money_cards,
        breaks_money=breaks_money,
        totals=[
            {"id": key, "value": f"{counts.get(key, 0):,}", "label": label} for key, label in totals
        ],
        validation_columns=[
            (c, c.replace("_", " "), "int" if c == "unexpected_count" else "text")
            for c in data["validation"]["columns"]
        ],
        receivable_columns=[
            ("bucket_name", "age", "text"),
            ("invoices", "invoices", "int"),
            *[(c, f"outstanding {c}", "money") for c in data["receivables"]["currencies"]],
        ],
        finding_columns=FINDING_COLUMNS,
        group_columns=GROUP_COLUMNS,
        break_columns=BREAK_COLUMNS,
        charts={k: Markup(v) for k, v in data["charts"].items()},  # noqa: S704 - escaped SVG
    )
    return template.render(context)


# Every night the warehouse knows: each run id in ops.stage_runs (every stage records itself)
# or recon.drift_runs, with what reconcile found and which stages failed. A night whose stages
# stopped before reconcile has no drift row and is listed all the same.
NIGHTS = """
with stages as (
    select run_id, min(started_at) as started_at,
           bool_or(status = 'running') as running,
           coalesce(array_agg(stage order by stage)
                    filter (where status in ('failed', 'abandoned')), '{}') as failed_stages,
           coalesce(array_agg(stage order by started_at), '{}') as stages
    from ops.stage_runs group by run_id
)
select coalesce(d.run_id, s.run_id) as run_id, coalesce(d.reconciled_at, s.started_at) as at,
       d.reconciled_at, d.open_findings, d.new_findings, d.resolved_findings, d.waived_findings,
       d.money_at_stake, d.alert_status, d.alerts, d.report_html,
       coalesce(d.stale_sources, '[]'::jsonb) as stale_sources,
       coalesce(d.stale_findings, 0) as stale_findings,
       coalesce(s.running, false) as running,
       coalesce(s.failed_stages, '{}') as failed_stages, coalesce(s.stages, '{}') as stages
from recon.drift_runs d full join stages s on s.run_id = d.run_id
order by coalesce(d.reconciled_at, s.started_at) desc nulls last
limit %s
"""


def night_state(run: dict[str, Any]) -> tuple[str, list[str]]:
    """(complete | partial | failed | running, the failing stages) of one night: partial when
    only extract streams failed and the night went on; failed when any other stage failed or
    the night stopped before its drift report."""
    failed = [stage for stage in run.get("failed_stages") or [] if stage != "extract"]
    failing = [f"extract:{s['source']}.{s['stream']}" for s in run.get("stale_sources") or []]
    failing += [stage for stage in failed if stage not in failing]
    if run.get("running"):
        return "running", failing
    if any(not stage.startswith("extract") for stage in failed):
        return "failed", failing
    if run.get("reconciled_at") is None or not run.get("report_html"):
        stages = run.get("stages") or []
        last = stages[-1] if stages else "nothing"
        return "failed", failing or [f"stopped after {last}: see the run in Airflow"]
    if failing:
        return "partial", failing
    return "complete", failing


def nights(conn: Any, limit: int = 200) -> list[dict[str, Any]]:
    """The rows of the Drift reports page, newest first, each with its state and failing stages
    (`conn` reads recon.drift_runs and ops.stage_runs, e.g. as tieout_finance)."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        ready = cur.execute(
            """select to_regclass('recon.drift_runs') is not null
                      and to_regclass('ops.stage_runs') is not null as ok"""
        ).fetchone()
        if not ready or not ready["ok"]:
            return []
        rows = list(cur.execute(NIGHTS, (limit,)).fetchall())
    for row in rows:
        row["state"], row["failing"] = night_state(row)
    return rows


def render_runs(runs: list[dict[str, Any]], held: list[dict[str, Any]]) -> str:
    """The Airflow plugin's page: every night (see `nights`) and the writes held for a person."""
    return ENVIRONMENT.get_template("runs.html.j2").render(runs=runs, held=held)
