"""`tieout transform` and `tieout docs`: the dbt project from the command line.

They print what dbt did and exit non-zero naming the failing nodes; they never print the
warehouse password (the profile reaches dbt through the environment only).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import click

from tieout.transform.runner import NodeFinished


@contextlib.contextmanager
def node_progress(show: bool) -> Iterator[NodeFinished | None]:
    """A progress bar of dbt nodes on stderr (when it is a terminal), the last node beside it."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(desc="dbt", unit=" node", file=sys.stderr, leave=True)

    def on_node(done: int, total: int | None, unique_id: str, status: str) -> None:
        if total and bar.total != total:
            bar.total = total
        name = unique_id.split(".")[2] if unique_id.count(".") >= 2 else unique_id
        bar.set_postfix_str(f"{name} {status}", refresh=False)
        bar.update(done - bar.n)

    try:
        yield on_node
    finally:
        bar.close()


@click.command("transform")
@click.option("--select", "-s", "select", multiple=True, help="dbt node selection (repeatable).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from raw.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Build and test every node, not only those downstream of new raw data.",
)
@click.option("--as-of-date", default=None, help="Date receivables are aged against (YYYY-MM-DD).")
@click.option("--run-id", default=None, help="Run id for ops.stage_runs (default: current run).")
@click.option("--parse-only", is_flag=True, help="Only write dbt_project/target/manifest.json.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def transform(
    select: tuple[str, ...],
    full_refresh: bool,
    everything: bool,
    as_of_date: str | None,
    run_id: str | None,
    parse_only: bool,
    as_json: bool,
) -> None:
    """Build staging, identity resolution, canonical tables, snapshots and finance marts."""
    from tieout.transform import DbtError, build, parse_manifest

    try:
        if parse_only:
            click.echo(f"manifest: {parse_manifest()}")
            return
        with node_progress(show=not as_json and sys.stderr.isatty()) as on_node:
            figures = build(
                run_id=run_id,
                select=list(select) or None,
                full_refresh=full_refresh,
                as_of_date=as_of_date,
                incremental=not everything,
                on_node=on_node,
            )
    except DbtError as exc:
        click.secho(f"tieout: {exc}", fg="red", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(figures, default=str))
        return
    nodes = ", ".join(
        f"{kind} {sum(counts.values())}" for kind, counts in sorted(figures["by_type"].items())
    )
    plan = figures.get("plan", {})
    why = f" ({plan['reason']})" if plan else ""
    click.echo(f"transform ok in {figures['duration_s']} s{why}: {nodes or 'no dbt nodes run'}")
    for table, rows in figures.get("canonical_rows", {}).items():
        click.echo(f"  canonical.{table:<12} {rows:>9,} rows")


@click.command("docs")
def docs() -> None:
    """Generate the dbt docs (one self-contained HTML file) and print its path."""
    from tieout.transform import DbtError, generate_docs

    try:
        path = generate_docs()
    except DbtError as exc:
        click.secho(f"tieout: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(str(path))
