"""`tieout reverse-etl`: plan (prints, writes nothing), run, replay dead rows, status, and a
person's approve / discard of held writes.

It never prints a credential; a refused gate or writes held in the run exit non-zero (3) with
the reason.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from tieout import db
from tieout.config import load_config
from tieout.db import migrate
from tieout.reverse_etl import hold, outbox, plan
from tieout.reverse_etl.gate import GateRefused, latest_validated_run
from tieout.runs import current_run_id

REFUSED = 3


def gated_run_id(run_id: str | None) -> str:
    """The named run, else the Airflow or TIEOUT_RUN_ID run, else the run whose validation
    checked the newest build (refused when there is none)."""
    if run_id:
        return run_id
    if os.environ.get("TIEOUT_RUN_ID") or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"):
        return current_run_id()
    with db.connect(role="reverse_etl") as conn:
        found = latest_validated_run(conn)
    if found is None:
        raise GateRefused(
            "reverse ETL refused: no validation checked the newest canonical build; run "
            "`tieout validate` first"
        )
    return found


def gated_run(
    run_id: str | None, systems: tuple[str, ...], dry_run: bool = False, force: bool = False
) -> dict[str, Any]:
    """A reverse ETL run under the validation gate; a refused gate exits with REFUSED."""
    from tieout.reverse_etl.run import reverse_etl as run

    try:
        return run(
            gated_run_id(run_id), dry_run=dry_run, force=force, systems=list(systems) or None
        )
    except GateRefused as exc:
        click.echo(f"tieout: {exc}", err=True)
        sys.exit(REFUSED)


def _dump(figures: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures, default=str))
        return
    for key, value in figures.items():
        if isinstance(value, dict | list):
            click.echo(f"{key}:")
            for item in value.items() if isinstance(value, dict) else enumerate(value):
                click.echo(f"  {item[0]}: {json.dumps(item[1], default=str)}")
        else:
            click.echo(f"{key}: {value}")


@click.group("reverse-etl")
def reverse_etl() -> None:
    """Push agreed values back to the systems that are wrong."""


def target_systems(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """--system must name a system reverse_etl.yml has a target for."""
    known = sorted({t.system for t in load_config().reverse_etl.targets})
    for name in value:
        if name not in known:
            raise click.BadParameter(
                f"no reverse ETL target in system {name!r}; expected one of {', '.join(known)}"
            )
    return value


@reverse_etl.command("plan")
@click.option(
    "--run-id",
    default=None,
    help="Run whose validation gates the plan (default: the latest "
    "validation of the newest build).",
)
@click.option("--system", "systems", multiple=True, callback=target_systems)
@click.option("--json", "as_json", is_flag=True)
def plan_cmd(run_id: str | None, systems: tuple[str, ...], as_json: bool) -> None:
    """Print what a run would write (counts per target and field, a sample) and what it would
    hold; write nothing."""
    figures = gated_run(run_id, systems, dry_run=True)
    _dump(figures, as_json)


@reverse_etl.command("run")
@click.option("--run-id", default=None, help="Run whose validation gates the writes.")
@click.option("--system", "systems", multiple=True, callback=target_systems)
@click.option(
    "--force",
    is_flag=True,
    help="Do not hold writes above the safety brake (changed values and alerts still hold).",
)
@click.option("--json", "as_json", is_flag=True)
def run_cmd(run_id: str | None, systems: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Verify earlier writes, plan, hold what needs a person, and send the rest."""
    figures = gated_run(run_id, systems, force=force)
    _dump(figures, as_json)
    held = figures.get("held", {}).get("writes", 0)
    if held:
        click.echo(
            f"tieout: {held} write(s) held for a person; see `tieout reverse-etl status`, then "
            "`tieout reverse-etl approve|discard --target T --reason ...`",
            err=True,
        )
        sys.exit(REFUSED)


def _decision_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option("--target", required=True, help="system or system.entity (crm.customer)"),
            click.option("--field", default=None, help="Only held writes that write this field."),
            click.option("--reason", required=True, help="Why: kept in rev.decisions."),
            click.option("--json", "as_json", is_flag=True),
        ]
    ):
        command = option(command)
    return command


@reverse_etl.command("approve")
@_decision_options
def approve_cmd(target: str, field: str | None, reason: str, as_json: bool) -> None:
    """Release held writes: exactly those are sent now, once, and read back. Audited with who
    (TIEOUT_USER or the OS user) and why."""
    from tieout.reverse_etl.run import release

    try:
        figures = release(target, reason, field)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    _dump(figures, as_json)
    if not figures["released"]:
        click.echo(f"tieout: nothing held for {target}{'.' + field if field else ''}", err=True)


@reverse_etl.command("discard")
@_decision_options
def discard_cmd(target: str, field: str | None, reason: str, as_json: bool) -> None:
    """Drop held writes: they are never sent. Audited with who and why."""
    from tieout.reverse_etl.run import discard

    try:
        figures = discard(target, reason, field)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    _dump(figures, as_json)


@reverse_etl.command("replay")
@click.option("--id", "ids", multiple=True, type=int, help="Outbox ids (default: every dead row).")
@click.option("--system", default=None)
def replay_cmd(ids: tuple[int, ...], system: str | None) -> None:
    """Give dead rows a fresh set of attempts; the next run sends them."""
    migrate.require_current()
    with db.connect(role="reverse_etl", autocommit=True) as conn:
        count = outbox.replay(conn, list(ids) or None, system)
    click.echo(f"{count} dead write(s) planned again; `tieout reverse-etl run` sends them")


@reverse_etl.command("status")
@click.option("--json", "as_json", is_flag=True)
def status_cmd(as_json: bool) -> None:
    """Outbox rows per target and state, held writes with their reasons, dead rows, the latest
    decisions, and what needs a person."""
    config = load_config()
    migrate.require_current()
    with db.connect(role="reverse_etl") as conn:
        dead = [
            {"outbox_id": r[0], "target": r[1], "record": r[2], "attempts": r[3], "error": r[4]}
            for r in conn.execute(
                """select outbox_id, system || '.' || entity, record_key, attempts, last_error
                   from rev.outbox where state = 'dead' order by outbox_id limit 200"""
            )
        ]
        figures: dict[str, Any] = {
            "outbox": outbox.states(conn),
            "held": hold.held_writes(conn),
            "dead": dead,
            "decisions": hold.decisions(conn, 20),
            "needs_person": plan.needs_person(conn, config.reverse_etl, config.entities),
        }
    if as_json:
        _dump(figures, True)
        return
    _dump({k: v for k, v in figures.items() if k != "held"}, False)
    click.echo(f"held: {sum(h['count'] for h in figures['held'])} write(s)")
    for item in figures["held"]:
        click.echo(
            f"  {item['system']}.{item['entity']} [{', '.join(item['fields'])}] "
            f"{item['count']} held since {item['held_at']:%Y-%m-%d %H:%M}: {item['reason']}"
        )
