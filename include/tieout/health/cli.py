"""`tieout health`: every source, reverse-ETL target and entity's divergence with its state and
the rule that decided it. Reads only; the nightly's health task is what stores states and alerts.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

COLORS = {"healthy": "green", "degraded": "yellow", "failing": "red"}


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def health(as_json: bool) -> None:
    """Integration health: healthy, degraded or failing, and why."""
    from tieout import db
    from tieout.config import ConfigError
    from tieout.health.check import judge

    try:
        with db.connect(role="reconciler") as conn:
            judged = judge(conn)
    except ConfigError as exc:
        click.secho(f"tieout: {exc}", fg="red", err=True)
        sys.exit(2)
    if as_json:
        payload = {
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "integrations": [j.as_dict() for j in judged],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    width = max((len(j.name) for j in judged), default=4)
    for j in judged:
        state = click.style(f"{j.state:<9}", fg=COLORS[j.state])
        click.echo(f"{j.kind:<10} {j.name:<{width}}  {state} {j.rule:<20} {j.detail}")
