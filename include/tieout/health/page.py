"""The Integrations page of the Airflow plugin: one row per source and reverse-ETL target with its
state, the rule that fired and sparklines over its last runs, and a page of each one's runs.

Reads ops only and renders with Jinja2 (autoescaped); it never writes and never shows an error
text it did not escape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from jinja2 import Environment
from markupsafe import Markup
from psycopg.rows import dict_row

from tieout.health import rules

RUNS = 30
DAG_ID = "tieout_nightly"
ERRORS = "errors_4xx + errors_5xx + errors_timeout + errors_connection"
KEY = "case when direction = 'extract' then source else source || '.' || stream end"


def history(conn: psycopg.Connection[Any], runs: int = RUNS) -> dict[str, list[dict[str, Any]]]:
    """Per source or target ('crm', 'erp.customer'): its last `runs` runs, oldest first, with
    requests, error rate, worst p95 latency and the freshest stream's lag."""
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "select to_regclass('ops.integration_metrics') is not null as ok"
        ).fetchone()
        if not found or not found["ok"]:
            return {}
        cur.execute(
            f"""
            with per_run as (
                select {KEY} as key, run_id, min(recorded_at) as at,
                       sum(requests) as requests, sum({ERRORS}) as errors,
                       max(latency_p95_ms) as p95_ms, min(freshness_lag_s) as freshness_s
                from ops.integration_metrics group by 1, 2
            ), ranked as (
                select *, row_number() over (partition by key order by at desc) as n
                from per_run
            )
            select * from ranked where n <= %s order by key, at
            """,  # noqa: S608 - fixed SQL fragments
            (runs,),
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for row in cur.fetchall():
            requests = int(row["requests"] or 0)
            row["requests"], row["errors"] = requests, int(row["errors"] or 0)
            row["error_rate"] = row["errors"] / requests if requests else 0.0
            out.setdefault(row["key"], []).append(row)
    return out


def runs_of(
    conn: psycopg.Connection[Any], kind: str, name: str, runs: int = RUNS
) -> list[dict[str, Any]]:
    """The metrics rows of one source's streams or one target, newest first."""
    params: tuple[str, ...]
    if kind == "source":
        where, params = "direction = 'extract' and source = %s", (name,)
    else:
        system, _, entity = name.partition(".")
        where, params = (
            "direction = 'reverse_etl' and source = %s and stream = %s",
            (system, entity),
        )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""select *, {ERRORS} as errors from ops.integration_metrics where {where}
                order by recorded_at desc limit %s""",  # noqa: S608 - fixed SQL fragments
            (*params, runs * 20),
        )
        return list(cur.fetchall())


def task_id(row: dict[str, Any]) -> str:
    """The nightly DAG's task that produced a metrics row."""
    if row["direction"] == "extract":
        return f"extract.{row['source']}__{row['stream']}"
    return "reverse_etl.write_back"


def log_url(row: dict[str, Any], base: str = "") -> str:
    """The Airflow UI's page of that task instance (it opens on the task's log)."""
    return (
        f"{base}/dags/{DAG_ID}/runs/{quote(row['run_id'], safe='')}/tasks/"
        f"{quote(task_id(row), safe='')}"
    )


def sparkline(values: list[float | None], width: int = 120, height: int = 26) -> Markup:
    """An inline SVG line of `values` (oldest first), scaled to its own min and max."""
    points = [(i, float(v)) for i, v in enumerate(values) if v is not None]
    if not points:
        return Markup('<svg class="spark" width="%d" height="%d"></svg>') % (width, height)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}" for i, v in points
    )
    last_x, last_y = coords.split(" ")[-1].split(",")
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
        '<polyline fill="none" stroke="#3b6fb6" stroke-width="1.5" points="{c}"/>'
        '<circle cx="{x}" cy="{y}" r="2.2" fill="#3b6fb6"/></svg>'
    ).format(w=width, h=height, c=coords, x=last_x, y=last_y)


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:,.0f} ms"
    if kind == "lag":
        return f"{value / 3600:,.1f} h" if value < 172800 else f"{value / 86400:,.1f} d"
    return f"{value:,.0f}"


ENV = Environment(autoescape=True)  # noqa: S701 - autoescape is on
ENV.globals.update(sparkline=sparkline, fmt=_fmt, log_url=log_url, quote=quote)

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430}
table{border-collapse:collapse}th,td{padding:6px 10px;border-bottom:1px solid #e3e6eb;
text-align:left;vertical-align:middle}th{font-weight:600;color:#4a5568}
td.num{text-align:right;white-space:nowrap}.muted{color:#6b7280}.small{font-size:12px}
.state{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;font-size:12px}
.healthy{background:#def7e5;color:#146c2e}.degraded{background:#fff1c2;color:#8a5a00}
.failing{background:#fde2e0;color:#a3281b}.chart{white-space:nowrap}
.chart span{display:block;font-size:11px;color:#6b7280}
"""

OVERVIEW = ENV.from_string(
    """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>tieout integrations</title><style>"""
    + STYLE
    + """</style></head><body>
<h1>Integrations</h1>
<p class="muted">Each source and reverse-ETL target by the rules in alerts.yml and the sources'
freshness; charts show the last {{ runs }} runs, oldest left.</p>
<table><thead><tr><th>integration</th><th>state</th><th>rule</th><th>why</th>
<th>requests</th><th>error rate</th><th>p95 latency</th><th>freshness lag</th></tr></thead><tbody>
{% for j in judged if j.kind != "divergence" %}{% set h = history.get(j.name, []) %}
<tr><td><a href="integrations/{{ j.kind }}/{{ quote(j.name, safe='') }}">{{ j.name }}</a>
<div class="small muted">{{ j.kind }}</div></td>
<td><span class="state {{ j.state }}">{{ j.state }}</span></td>
<td>{{ j.rule }}</td><td class="small">{{ j.detail }}</td>
{% for field, kind in (("requests", "n"), ("error_rate", "rate"), ("p95_ms", "ms"),
                         ("freshness_s", "lag")) %}
<td class="chart">{{ sparkline(h | map(attribute=field) | list) }}
<span>{{ fmt(h[-1][field] if h else None, kind) }}</span></td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% set divergence = judged | selectattr("kind", "equalto", "divergence") | list %}
{% if divergence %}<h2>Open findings by age</h2><table><tbody>
{% for j in divergence %}<tr><td>{{ j.name }}</td>
<td><span class="state {{ j.state }}">{{ j.state }}</span></td><td class="small">{{ j.detail }}</td>
</tr>{% endfor %}</tbody></table>{% endif %}
</body></html>"""
)

RUNS_PAGE = ENV.from_string(
    """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>tieout {{ name }}</title><style>"""
    + STYLE
    + """</style></head><body>
<p><a href="../../">← Integrations</a></p>
<h1>{{ name }} <span class="state {{ judged.state }}">{{ judged.state }}</span></h1>
<p>{{ judged.rule }}: {{ judged.detail }}</p>
{% if judged.fired | length > 1 %}<ul class="small">{% for f in judged.fired %}
<li>{{ f.state }} · {{ f.rule }}: {{ f.detail }}</li>{% endfor %}</ul>{% endif %}
<table><thead><tr><th>run</th><th>stream</th><th>status</th><th>requests</th><th>errors
(4xx/5xx/timeout/conn)</th><th>429s (wait)</th><th>p50 / p95 / p99</th><th>records/s</th>
<th>quarantined</th><th>freshness lag</th><th>task</th></tr></thead><tbody>
{% for r in rows %}<tr>
<td class="small">{{ r.run_id }}
<div class="muted">{{ r.recorded_at.strftime("%Y-%m-%d %H:%M") }}</div></td>
<td>{{ r.stream }}</td>
<td><span class="state {{ 'healthy' if r.status == 'success' else 'failing' }}">
{{ r.status }}</span>
{% if r.circuit_open %}<div class="small">circuit open</div>{% endif %}</td>
<td class="num">{{ fmt(r.requests, "n") }}</td>
<td class="num">{{ r.errors }} ({{ r.errors_4xx }}/{{ r.errors_5xx }}/
{{- r.errors_timeout }}/{{ r.errors_connection }})</td>
<td class="num">{{ r.http_429 }} ({{ "%.1f" | format(r.wait_429_s) }} s)</td>
<td class="num">{{ fmt(r.latency_p50_ms, "ms") }} / {{ fmt(r.latency_p95_ms, "ms") }}
 / {{ fmt(r.latency_p99_ms, "ms") }}</td>
<td class="num">{{ fmt(r.records_per_s, "n") }}</td>
<td class="num">{{ r.quarantined }}
{%- if r.quarantine_share %} ({{ fmt(r.quarantine_share, "rate") }}){% endif %}</td>
<td class="num">{{ fmt(r.freshness_lag_s, "lag") }}</td>
<td><a href="{{ log_url(r, base) }}">
{{- 'failing task log' if r.status == 'failed' else 'task log' }}</a>
{% if r.error %}<div class="small muted">{{ r.error[:200] }}</div>{% endif %}</td></tr>
{% else %}<tr><td colspan="11" class="muted">No runs recorded yet.</td></tr>{% endfor %}
</tbody></table></body></html>"""
)


def render_overview(
    judged: list[rules.Judgement], history_by_key: dict[str, list[dict[str, Any]]]
) -> str:
    return OVERVIEW.render(judged=judged, history=history_by_key, runs=RUNS)


def render_runs(judged: rules.Judgement, rows: list[dict[str, Any]], base: str = "") -> str:
    return RUNS_PAGE.render(name=judged.name, judged=judged, rows=rows, base=base)
