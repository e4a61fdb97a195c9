"""`tieout reverse-etl`: plan (prints, writes nothing), run, replay dead rows, status.

It never prints a credential; a tripped safety brake exits non-zero with the reason.
"""

from __future__ import annotations

import json
import sys

import click

from tieout import db
from tieout.config import load_config
from tieout.reverse_etl import outbox, plan
from tieout.reverse_etl.plan import BrakeEngaged
from tieout.runs import current_run_id


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


@reverse_etl.command("plan")
@click.option("--run-id", default=None, help="Run whose validation gates the plan.")
@click.option("--system", "systems", multiple=True)
@click.option("--json", "as_json", is_flag=True)
def plan_cmd(run_id: str | None, systems: tuple[str, ...], as_json: bool) -> None:
    """Print what a run would write (counts per target and field, a sample); write nothing."""
    from tieout.reverse_etl.run import reverse_etl as run

    figures = run(run_id or current_run_id(), dry_run=True, systems=list(systems) or None)
    _dump(figures, as_json)


@reverse_etl.command("run")
@click.option("--run-id", default=None)
@click.option("--system", "systems", multiple=True)
@click.option("--force", is_flag=True, help="Send even above the safety brake.")
@click.option("--json", "as_json", is_flag=True)
def run_cmd(run_id: str | None, systems: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Verify earlier writes, plan, and send through the outbox."""
    from tieout.reverse_etl.run import reverse_etl as run

    try:
        figures = run(run_id or current_run_id(), force=force, systems=list(systems) or None)
    except BrakeEngaged as exc:
        click.echo(f"tieout: {exc}", err=True)
        sys.exit(3)
    _dump(figures, as_json)


@reverse_etl.command("replay")
@click.option("--id", "ids", multiple=True, type=int, help="Outbox ids (default: every dead row).")
@click.option("--system", default=None)
def replay_cmd(ids: tuple[int, ...], system: str | None) -> None:
    """Give dead rows a fresh set of attempts; the next run sends them."""
    with db.connect(role="reverse_etl", autocommit=True) as conn:
        count = outbox.replay(conn, list(ids) or None, system)
    click.echo(f"{count} dead write(s) planned again; `tieout reverse-etl run` sends them")


@reverse_etl.command("status")
@click.option("--json", "as_json", is_flag=True)
def status_cmd(as_json: bool) -> None:
    """Outbox rows per target and state, dead rows, and what needs a person."""
    config = load_config()
    with db.connect(role="reverse_etl") as conn:
        dead = [
            {"outbox_id": r[0], "target": r[1], "record": r[2], "attempts": r[3], "error": r[4]}
            for r in conn.execute(
                """select outbox_id, system || '.' || entity, record_key, attempts, last_error
                   from rev.outbox where state = 'dead' order by outbox_id limit 200"""
            )
        ]
        figures = {
            "outbox": outbox.states(conn),
            "dead": dead,
            "needs_person": plan.needs_person(conn, config.reverse_etl, config.entities),
        }
    _dump(figures, as_json)
