"""A reconcile run's drift: its row in recon.drift_runs and the alerts it raises.

This is the one home of drift runs and alerts. DESIGN.md lists the drift_runs rows and the
alerts under the report stage, but both belong to the reconcile run: the row is written in the
same transaction as the findings it counts (a failed run leaves neither), and reverse ETL, which
runs before the report, holds new writes on the alerts of the latest run (`holding`), so the
alerts must be known when reconcile ends. Stages only look back, so reverse ETL and the report
read them from here or from the table; the report stage only adds its files' paths to the row.

An alert is a threshold of include/config/alerts.yml the run crosses. The notifier logs, and posts
to a webhook only when an Airflow connection names one; a failed webhook is logged, never raised,
and no URL or secret is ever written to a log line. Integration health announces through it too.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import psycopg

from tieout.config import Alerts
from tieout.http import connections

log = logging.getLogger("tieout.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str  # money_at_stake | new_findings
    message: str
    value: float
    threshold: float
    currency: str | None = None
    entity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def evaluate(
    conn: psycopg.Connection[Any], run_id: str, alerts: Alerts, records: dict[str, int]
) -> list[Alert]:
    """The thresholds this run crosses, with a sentence finance can read for each."""
    raised: list[Alert] = []
    money = conn.execute(
        """select upper(currency), sum(money_impact) from recon.findings
           where status = 'open' and currency is not null and money_impact is not null
           group by upper(currency) order by 1"""
    ).fetchall()
    for currency, amount in money:
        threshold = alerts.money_threshold(currency)
        if threshold is not None and float(amount) > threshold:
            raised.append(
                Alert(
                    "money_at_stake",
                    f"{float(amount):,.2f} {currency} at stake in open findings "
                    f"(threshold {threshold:,.2f} {currency})",
                    float(amount),
                    threshold,
                    currency=currency,
                )
            )
    if alerts.new_findings_share is not None:
        rows = conn.execute(
            """select entity, count(*) from recon.findings
               where first_seen_run_id = %s group by entity order by entity""",
            (run_id,),
        ).fetchall()
        for entity, count in rows:
            total = records.get(entity, 0)
            share = count / total if total else 1.0
            if count >= alerts.min_new_findings and share > alerts.new_findings_share:
                raised.append(
                    Alert(
                        "new_findings",
                        f"{count} new {entity} findings, {share:.1%} of {total} {entity} "
                        f"records (threshold {alerts.new_findings_share:.1%})",
                        round(share, 6),
                        alerts.new_findings_share,
                        entity=entity,
                    )
                )
    return raised


def run_totals(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    """Open, new, resolved and waived findings and the money at stake, after this run's merge."""
    row = conn.execute(
        """select
               count(*) filter (where status = 'open'),
               count(*) filter (where first_seen_run_id = %(run)s),
               count(*) filter (where resolved_run_id = %(run)s),
               count(*) filter (where status = 'waived'),
               count(*) filter (where status <> 'resolved' and stale_since is not null)
           from recon.findings
           where status <> 'resolved' or resolved_run_id = %(run)s""",
        {"run": run_id},
    ).fetchone()
    assert row is not None
    money: dict[str, float] = {}
    by_system: dict[str, dict[str, Any]] = {}
    for system, currency, count, stale, amount in conn.execute(
        """select system, upper(currency), count(*), count(stale_since), sum(money_impact)
           from recon.findings where status = 'open'
           group by system, upper(currency) order by 1, 2"""
    ).fetchall():
        entry = by_system.setdefault(system, {"findings": 0, "money": {}})
        entry["findings"] += int(count)
        if stale:
            # open findings this run could not compare (their source failed): as last seen
            entry["stale"] = entry.get("stale", 0) + int(stale)
        if currency is not None and amount is not None:
            entry["money"][currency] = float(amount)
            money[currency] = money.get(currency, 0.0) + float(amount)
    return {
        "open_findings": int(row[0]),
        "new_findings": int(row[1]),
        "resolved_findings": int(row[2]),
        "waived_findings": int(row[3]),
        "stale_findings": int(row[4]),
        "money_at_stake": {k: round(v, 4) for k, v in sorted(money.items())},
        "by_system": by_system,
    }


def record(
    conn: psycopg.Connection[Any],
    run_id: str,
    entities: dict[str, Any],
    totals: dict[str, Any],
    balance_summary: dict[str, Any],
    raised: list[Alert],
    duration_s: float,
) -> None:
    """Insert (or, on a rerun of the run id, replace) the run's row in recon.drift_runs."""
    conn.execute(
        """
        insert into recon.drift_runs (
            run_id, reconciled_at, entities, open_findings, new_findings, resolved_findings,
            waived_findings, money_at_stake, by_system, balances, alert_status, alerts, duration_s,
            stale_findings, stale_sources
        )
        values (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (run_id) do update set
            reconciled_at = excluded.reconciled_at,
            entities = excluded.entities,
            open_findings = excluded.open_findings,
            new_findings = excluded.new_findings,
            resolved_findings = excluded.resolved_findings,
            waived_findings = excluded.waived_findings,
            money_at_stake = excluded.money_at_stake,
            by_system = excluded.by_system,
            balances = excluded.balances,
            alert_status = excluded.alert_status,
            alerts = excluded.alerts,
            duration_s = excluded.duration_s,
            stale_findings = excluded.stale_findings,
            stale_sources = excluded.stale_sources
        """,
        (
            run_id,
            json.dumps(entities),
            totals["open_findings"],
            totals["new_findings"],
            totals["resolved_findings"],
            totals["waived_findings"],
            json.dumps(totals["money_at_stake"]),
            json.dumps(totals["by_system"]),
            json.dumps(balance_summary),
            "alert" if raised else "ok",
            json.dumps([a.as_dict() for a in raised]),
            duration_s,
            totals.get("stale_findings", 0),
            json.dumps(totals.get("stale_sources", [])),
        ),
    )


def webhook_url(connection_id: str) -> str | None:
    """The webhook URL of an Airflow connection (environment first, then Airflow itself)."""
    value = os.environ.get(connections.env_name(connection_id))
    if value is None:
        conn = connections.from_airflow(connection_id)
        if conn is None:
            return None
        host = conn.host or ""
        if not host:
            return None
        if host.startswith(("http://", "https://")):
            return host
        schema = conn.schema or "https"
        port = f":{conn.port}" if conn.port else ""
        return f"{schema}://{host}{port}"
    if value.startswith("{"):
        value = json.loads(value).get("host") or ""
    return value if value.startswith(("http://", "https://")) else None


def notify(run_id: str, raised: list[Alert], alerts: Alerts) -> dict[str, Any]:
    """Log every alert and post them to the webhook if one is configured; never raises."""
    outcome: dict[str, Any] = {"logged": 0, "webhook": "not configured"}
    if not raised:
        outcome["webhook"] = "nothing to send"
        return outcome
    if alerts.notify.log:
        for alert in raised:
            log.warning("tieout alert for run %s: %s", run_id, alert.message)
            outcome["logged"] += 1
    connection_id = alerts.notify.webhook_connection_id
    url = webhook_url(connection_id) if connection_id else None
    if url is None:
        return outcome
    payload = {
        "text": f"tieout run {run_id}: " + "; ".join(a.message for a in raised),
        "run_id": run_id,
        "alerts": [a.as_dict() for a in raised],
    }
    try:
        import requests

        response = requests.post(url, json=payload, timeout=10)
        outcome["webhook"] = f"HTTP {response.status_code}"
    except Exception as exc:  # noqa: BLE001 - an alert channel failing must not fail the run
        outcome["webhook"] = f"failed: {type(exc).__name__}"
        log.warning("tieout alert webhook %s failed: %s", connection_id, type(exc).__name__)
    return outcome


def holding(conn: psycopg.Connection[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The alerts of the latest reconcile run, which hold reverse ETL's new writes, and its run id.

    The first reconcile of a warehouse has no history, so every finding in it is new and its
    new-findings share says nothing about a sudden change: it holds nothing."""
    rows = conn.execute(
        """select run_id, alerts from recon.drift_runs order by reconciled_at desc limit 2"""
    ).fetchall()
    if len(rows) < 2 or not rows[0][1]:
        return (str(rows[0][0]) if rows else None), []
    return str(rows[0][0]), list(rows[0][1])
