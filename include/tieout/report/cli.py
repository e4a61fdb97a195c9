"""`tieout report`: build (or rebuild) the drift report of a run and print where it is.

A thin wrapper over tieout.report.build; it never changes findings.
"""

from __future__ import annotations

import sys

import click


@click.command("report")
@click.option("--run-id", default=None, help="The run to report (default: the latest reconciled).")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
def report(run_id: str | None, open_browser: bool) -> None:
    """Build the drift report (HTML, CSV and an Excel workbook) for a run."""
    from tieout import db
    from tieout.db import migrate
    from tieout.report.build import ReportError
    from tieout.report.build import report as build

    migrate.require_current()
    if run_id is None:
        with db.connect(role="reconciler") as conn:
            row = conn.execute(
                "select run_id from recon.drift_runs order by reconciled_at desc limit 1"
            ).fetchone()
        if row is None:
            click.secho("tieout: no run has been reconciled yet", fg="red", err=True)
            sys.exit(2)
        run_id = row[0]
    try:
        paths = build(run_id)
    except ReportError as exc:
        click.secho(f"tieout: {exc}", fg="red", err=True)
        sys.exit(2)
    click.echo(f"drift report: {paths['html']}")
    click.echo(f"findings csv: {paths['csv']}")
    click.echo(f"workbook:     {paths['xlsx']}")
    if open_browser:
        import webbrowser

        webbrowser.open(paths["html"].as_uri())
