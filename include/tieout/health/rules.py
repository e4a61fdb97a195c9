"""The rules that judge a source or reverse-ETL target healthy, degraded or failing from its
latest metrics rows, and an entity's divergence from how long its findings stay open.

Plain functions over plain rows: no database, no clock of their own (`now` is passed in), so each
rule is tested alone. Every judgement names the rule that decided it and why, in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from tieout.config import Freshness, HealthRules, Source, Target

HEALTHY, DEGRADED, FAILING = "healthy", "degraded", "failing"
SEVERITY = {HEALTHY: 0, DEGRADED: 1, FAILING: 2}
# when two rules fire with the same severity, the first one here names the state
RULE_ORDER = (
    "circuit_breaker",
    "run_failed",
    "error_rate",
    "freshness",
    "quarantine_share",
    "no_runs",
    "prolonged_divergence",
    "all_clear",
)

Row = Mapping[str, Any]  # a row of ops.integration_metrics


@dataclass(frozen=True)
class Finding:
    """One rule that fired (or the all-clear)."""

    rule: str
    state: str
    detail: str


@dataclass(frozen=True)
class Judgement:
    kind: str  # source | target | divergence
    name: str
    state: str
    rule: str
    detail: str
    fired: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fired"] = [asdict(f) for f in self.fired]
        return out


def worst(kind: str, name: str, fired: list[Finding], clear: str) -> Judgement:
    """The judgement of the most severe finding; the all-clear when nothing fired."""
    if not fired:
        return Judgement(kind, name, HEALTHY, "all_clear", clear, [])
    ordered = sorted(fired, key=lambda f: (-SEVERITY[f.state], RULE_ORDER.index(f.rule)))
    top = ordered[0]
    return Judgement(kind, name, top.state, top.rule, top.detail, ordered)


def share_state(value: float, warn: float, error: float) -> str | None:
    if value >= error:
        return FAILING
    if value >= warn:
        return DEGRADED
    return None


def check_run(label: str, row: Row) -> list[Finding]:
    """The circuit breaker and the run's own outcome."""
    if row.get("circuit_open"):
        return [
            Finding(
                "circuit_breaker",
                FAILING,
                f"{label}: the circuit breaker stopped the last run ({_error(row)})",
            )
        ]
    if row.get("status") == "failed":
        return [Finding("run_failed", FAILING, f"{label}: the last run failed ({_error(row)})")]
    return []


def check_error_rate(label: str, row: Row, rules: HealthRules) -> list[Finding]:
    """Failed requests (4xx, 5xx, timeouts, connection errors) per request; 429s are not
    errors, the source asked to slow down and was obeyed."""
    requests = int(row.get("requests") or 0)
    if not requests:
        return []
    errors = sum(
        int(row.get(c) or 0)
        for c in ("errors_4xx", "errors_5xx", "errors_timeout", "errors_connection")
    )
    rate = errors / requests
    limit = rules.error_rate
    state = share_state(rate, limit.warn, limit.error)
    if state is None:
        return []
    bound = limit.error if state == FAILING else limit.warn
    return [
        Finding(
            "error_rate",
            state,
            f"{label}: {rate:.1%} of {requests} requests failed (limit {bound:.1%})",
        )
    ]


def check_quarantine(label: str, row: Row, rules: HealthRules) -> list[Finding]:
    share = row.get("quarantine_share")
    if share is None:
        return []
    limit = rules.quarantine_share
    state = share_state(float(share), limit.warn, limit.error)
    if state is None:
        return []
    bound = limit.error if state == FAILING else limit.warn
    return [
        Finding(
            "quarantine_share",
            state,
            f"{label}: {float(share):.1%} of records quarantined (limit {bound:.1%})",
        )
    ]


def check_freshness(
    label: str, newest: datetime | None, freshness: Freshness | None, now: datetime
) -> list[Finding]:
    """now minus the newest cursor against warn_after / error_after."""
    if freshness is None or newest is None:
        return []
    lag = (now - newest).total_seconds()
    warn, error = freshness.seconds()
    if error is not None and lag > error:
        state, bound = FAILING, freshness.error_after
    elif warn is not None and lag > warn:
        state, bound = DEGRADED, freshness.warn_after
    else:
        return []
    return [
        Finding(
            "freshness",
            state,
            f"{label}: newest record is {_age(lag)} old (limit {bound})",
        )
    ]


def judge_source(
    source: Source, latest: Mapping[str, Row], rules: HealthRules, now: datetime
) -> Judgement:
    """A source from the latest metrics row of each of its streams (stream name -> row)."""
    fired: list[Finding] = []
    newest: datetime | None = None
    never = [s.name for s in source.streams if s.name not in latest]
    if never:
        fired.append(
            Finding("no_runs", DEGRADED, f"{source.name}: never extracted: {', '.join(never)}")
        )
    for stream in source.streams:
        row = latest.get(stream.name)
        if row is None:
            continue
        label = f"{source.name}.{stream.name}"
        fired += check_run(label, row)
        fired += check_error_rate(label, row, rules)
        fired += check_quarantine(label, row, rules)
        cursor = row.get("newest_cursor")
        fired += check_freshness(label, cursor, stream.freshness, now)
        if cursor is not None and (newest is None or cursor > newest):
            newest = cursor
    fired += check_freshness(source.name, newest, source.freshness, now)
    streams = len(source.streams)
    return worst("source", source.name, fired, f"{source.name}: {streams} streams within limits")


def judge_target(target: Target, row: Row | None, rules: HealthRules) -> Judgement:
    """A reverse-ETL target from its latest metrics row; never written to is healthy."""
    name = target_name(target)
    if row is None:  # a target only hears from reverse ETL when a system disagrees
        return Judgement("target", name, HEALTHY, "no_runs", f"{name}: nothing sent yet")
    fired = check_run(name, row) + check_error_rate(name, row, rules)
    fired += check_quarantine(name, row, rules)
    return worst("target", name, fired, f"{name}: within limits")


def judge_divergence(
    entity: str, overdue: int, oldest_days: float | None, limit: int | None
) -> Judgement:
    """An entity is degraded while `overdue` of its findings are open longer than `limit` days."""
    if limit is None:
        return worst("divergence", entity, [], f"{entity}: no limit on open findings")
    if not overdue:
        return worst("divergence", entity, [], f"{entity}: no finding open longer than {limit}d")
    detail = (
        f"{entity}: {overdue} findings open longer than {limit} days "
        f"(oldest {oldest_days or 0:.0f} days)"
    )
    return worst("divergence", entity, [Finding("prolonged_divergence", DEGRADED, detail)], "")


def target_name(target: Target) -> str:
    return f"{target.system}.{target.entity}"


def _error(row: Row) -> str:
    text = str(row.get("error") or "no error recorded")
    return text if len(text) <= 160 else text[:157] + "..."


def _age(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f}d"
    return f"{seconds / 3600:.1f}h"
