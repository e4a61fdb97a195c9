"""`tieout findings` and what `tieout reconcile` prints: read and waive findings, show a run.

Thin wrappers over tieout.reconcile; a waiver always needs a reason and leaves an audit row,
and nothing here prints a connection string. The `tieout reconcile` command itself lives in
tieout.cli, because it also builds the drift report and the reconcile stage never imports the
report stage.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import psycopg
from psycopg import sql

from tieout.reconcile.compare import KINDS


def known_names(kind: str) -> Any:
    """A click callback refusing an entity or system name include/config does not declare."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        given = value if isinstance(value, tuple) else (value,) if value is not None else ()
        if not given:
            return value
        from tieout.config import load_config

        config = load_config()
        known = sorted(config.entities if kind == "entity" else config.sources)
        for name in given:
            if name not in known:
                raise click.BadParameter(
                    f"no {kind} named {name!r} in the config; expected one of {', '.join(known)}"
                )
        return value

    return check


def refuse_unknown_names(
    conn: psycopg.Connection[Any], entity: str | None, system: str | None
) -> None:
    """--entity and --system name one the config declares, or one older findings hold."""
    from tieout.config import load_config

    config = load_config()
    for option, column, value, known in (
        ("--entity", "entity", entity, sorted(config.entities)),
        ("--system", "system", system, sorted(config.sources)),
    ):
        if value is None or value in known:
            continue
        held = conn.execute(
            sql.SQL("select exists (select from recon.findings where {} = %s)").format(
                sql.Identifier(column)
            ),
            (value,),
        ).fetchone()
        if held and held[0]:
            continue
        raise click.BadParameter(
            f"no {column} named {value!r} in the config or in recon.findings; "
            f"expected one of {', '.join(known)}",
            param_hint=f"'{option}'",
        )


def _money(value: Any, currency: str | None) -> str:
    if value is None:
        return ""
    return f"{float(value):,.2f} {currency or ''}".strip()


def show_run(figures: dict[str, Any], paths: dict[str, str]) -> None:
    """What `tieout reconcile` prints for a run: per entity, the totals, alerts, report files."""
    click.echo(f"run {figures['run_id']}: {figures['duration_s']} s")
    for name, entity in figures["entities"].items():
        found = ", ".join(f"{k}={v}" for k, v in entity["found"].items()) or "no differences"
        click.echo(
            f"  {name:<10} {entity['records']:>9} records  {found}  "
            f"(new {entity['opened']}, resolved {entity['resolved']})"
        )
    for name, reason in figures["skipped"].items():
        click.echo(f"  {name:<10} skipped: {reason}")
    money = ", ".join(f"{v:,.2f} {k}" for k, v in figures["money_at_stake"].items()) or "none"
    click.echo(
        f"open {figures['open_findings']}, new {figures['new_findings']}, "
        f"resolved {figures['resolved_findings']}, waived {figures['waived_findings']}; "
        f"money at stake: {money}"
    )
    for message in figures["alerts"]:
        click.secho(f"ALERT: {message}", fg="red")
    if paths:
        click.echo(f"drift report: {paths['html']}")
        click.echo(f"findings csv: {paths['csv']}")


@click.group("findings")
def findings() -> None:
    """List, show and waive findings."""


@findings.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "waived", "resolved", "all"]),
    default="open",
    show_default=True,
)
@click.option("--entity", default=None)
@click.option("--system", default=None)
@click.option("--kind", type=click.Choice(KINDS), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_cmd(
    status: str,
    entity: str | None,
    system: str | None,
    kind: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Findings, largest money impact first."""
    from tieout import db
    from tieout.db import migrate
    from tieout.reconcile import findings as store

    migrate.require_current()
    with db.connect(role="reconciler") as conn:
        refuse_unknown_names(conn, entity, system)
        rows = store.list_findings(
            conn, None if status == "all" else status, entity, system, kind, limit
        )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    if not rows:
        click.echo("no findings")
        return
    click.echo(
        f"{'id':>7}  {'status':<8} {'entity':<9} {'system':<8} {'kind':<18} {'field':<11} "
        f"{'record':<14} {'money':>14}  first seen"
    )
    for r in rows:
        click.echo(
            f"{r['finding_id']:>7}  {r['status']:<8} {r['entity']:<9} {r['system']:<8} "
            f"{r['kind']:<18} {r['field'] or '-':<11} {str(r['entity_ref'] or '-'):<14} "
            f"{_money(r['money_impact'], r['currency']):>14}  {r['first_seen_at']:%Y-%m-%d}"
        )


@findings.command("show")
@click.argument("finding_id", type=int)
def show_cmd(finding_id: int) -> None:
    """Everything known about one finding, with its waiver history."""
    from tieout import db
    from tieout.db import migrate
    from tieout.reconcile import findings as store

    migrate.require_current()
    with db.connect(role="reconciler") as conn:
        found = store.show(conn, finding_id)
    if found is None:
        click.secho(f"tieout: no finding {finding_id}", fg="red", err=True)
        sys.exit(2)
    audit = found.pop("audit")
    width = max(len(k) for k in found)
    for key, value in found.items():
        if value is not None and value != "":
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            click.echo(f"{key:<{width}}  {shown}")
    for entry in audit:
        click.echo(
            f"audit: {entry['at']:%Y-%m-%d %H:%M} {entry['action']} by {entry['actor']}: "
            f"{entry['reason']} ({entry['old_status']} -> {entry['new_status']})"
        )


@findings.command("waive")
@click.argument("finding_id", type=int)
@click.option("--reason", required=True, help="Why this difference is accepted.")
@click.option("--by", "by", default=None, help="Who waives it (default: TIEOUT_USER or login).")
@click.option("--undo", is_flag=True, help="Take the waiver back (the finding is open again).")
def waive_cmd(finding_id: int, reason: str, by: str | None, undo: bool) -> None:
    """Accept a difference (status waived) with who, when and why; every waiver is audited."""
    from tieout import db
    from tieout.db import migrate
    from tieout.reconcile import findings as store

    migrate.require_current()
    with db.connect(role="reconciler") as conn:
        try:
            found = (store.unwaive if undo else store.waive)(conn, finding_id, reason, by)
        except store.WaiveError as exc:
            click.secho(f"tieout: {exc}", fg="red", err=True)
            sys.exit(2)
    if undo:
        click.echo(f"finding {finding_id} is open again")
    else:
        click.echo(
            f"finding {finding_id} waived by {found['waived_by']} at "
            f"{found['waived_at']:%Y-%m-%d %H:%M}: {found['waive_reason']}"
        )
