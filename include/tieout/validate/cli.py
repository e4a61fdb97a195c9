"""`tieout validate`: the validate stage from a terminal, exiting non-zero on a critical failure.

It prints suites, failures and the Data Docs path, never the warehouse URL or GX's own logging.
"""

from __future__ import annotations

import json
import sys

import click


@click.command("validate")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help="Only this suite (e.g. canonical.invoices) or layer (raw, canonical); repeatable.",
)
@click.option("--run-id", default=None, help="Run id (default: TIEOUT_RUN_ID or a new one).")
@click.option("--no-docs", is_flag=True, help="Skip building Data Docs.")
@click.option(
    "--full/--changes",
    "full",
    default=None,
    help="Every suite on its whole table / only the rows changed since each suite's last "
    "validation (default: whole tables on the nights of include/config/validation.yml).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with the stage figures.")
@click.option(
    "--write-suites",
    is_flag=True,
    help="Regenerate expectations/gx from include/config and the dbt seeds, then exit.",
)
def validate(
    suites: tuple[str, ...],
    run_id: str | None,
    no_docs: bool,
    full: bool | None,
    as_json: bool,
    write_suites: bool,
) -> None:
    """Validate raw and canonical tables with Great Expectations."""
    if write_suites:
        from tieout.validate.suites import write_project

        written = write_project()
        for name in written:
            click.echo(f"wrote expectations/gx/{name}")
        click.echo(f"{len(written)} files changed" if written else "suites are up to date")
        return

    from tieout import runs
    from tieout.validate.context import quiet_gx
    from tieout.validate.run import validate as run_validate

    quiet_gx()
    run_id = run_id or runs.current_run_id()
    try:
        figures = run_validate(run_id, list(suites) or None, build_docs=not no_docs, full=full)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    if as_json:
        click.echo(json.dumps({"run_id": run_id, **figures}, default=str))
    else:
        report(run_id, figures)
    if figures["failed_critical"]:
        sys.exit(1)


def report(run_id: str, figures: dict[str, object]) -> None:
    scope = (
        f"whole tables ({figures['full_reason']})"
        if figures.get("mode") == "full" and figures.get("full_reason")
        else f"{figures.get('on_changed_rows', 0)} expectations on changed rows only"
        if figures.get("mode") == "changes"
        else "whole tables"
    )
    click.echo(
        f"run {run_id}: {figures['suites']} suites, {figures['expectations']} expectations "
        f"({scope}), "
        f"{figures['passed']} passed, {figures['failed_critical']} critical and "
        f"{figures['failed_warning']} warning failures in {figures['validate_s']} s"
    )
    blocked = figures.get("blocked") or {}
    assert isinstance(blocked, dict)
    for entity, names in blocked.items():
        click.secho(f"  BLOCKED {entity}: reverse ETL will not write it", fg="red")
        for name in names:
            click.secho(f"    critical  {name}", fg="red")
    for name in figures.get("warnings") or []:  # type: ignore[attr-defined]
        click.secho(f"    warning   {name}", fg="yellow")
    if figures.get("data_docs"):
        click.echo(f"Data Docs: {figures['data_docs']}")
