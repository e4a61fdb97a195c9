"""`tieout extract`: the same per-stream function the DAG calls, from a terminal, with progress.

It must never print a credential; a failed stream is reported and the others still run.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.command("extract")
@click.option("--source", "source", default=None, help="Only this source (e.g. crm).")
@click.option("--stream", "stream", default=None, help="Only this stream (e.g. contacts).")
@click.option("--full-refresh", is_flag=True, help="Ignore saved cursors; read everything again.")
@click.option(
    "--deletion-scan/--no-deletion-scan",
    default=None,
    help="Force or skip the full key scan for deletions (default: per stream config).",
)
@click.option(
    "--reset-state",
    is_flag=True,
    help="Forget where --source (and --stream) resume and their cursors, then stop; "
    "raw rows stay, the next run starts from the beginning.",
)
@click.option("--run-id", default=None, help="Run id (default: TIEOUT_RUN_ID or a new one).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object with every stream's figures."
)
def extract(
    source: str | None,
    stream: str | None,
    full_refresh: bool,
    deletion_scan: bool | None,
    reset_state: bool,
    run_id: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Extract and load sources into raw, resuming each stream where it stopped."""
    from tqdm import tqdm

    from tieout import runs
    from tieout.extract import plan
    from tieout.extract.run import extract_stream

    if reset_state and source is None:
        raise click.UsageError("--reset-state needs --source (and optionally --stream)")
    try:
        pairs = plan.streams(source, stream)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    if reset_state:
        _reset(source or "", [name for _, name in pairs])
        return
    run_id = run_id or runs.current_run_id()
    show = not quiet and sys.stderr.isatty()
    results: dict[str, Any] = {}
    failed: list[str] = []
    for source_name, stream_name in pairs:
        name = f"{source_name}.{stream_name}"
        bar = tqdm(desc=name, unit=" rec", disable=not show, file=sys.stderr, leave=True)
        try:
            figures = extract_stream(
                source_name,
                stream_name,
                run_id,
                full_refresh,
                deletion_scan=deletion_scan,
                progress=bar.update,
            )
        except Exception as exc:  # noqa: BLE001 - report and go on with the other streams
            failed.append(name)
            results[name] = {"status": "failed", "error": str(exc)}
            bar.close()
            click.secho(f"{name}: failed: {exc}", fg="red", err=True)
            continue
        bar.close()
        results[name] = figures
        if not as_json:
            click.echo(_line(name, figures))
            for change in figures.get("changes", []):
                click.echo(
                    f"    schema change: {change['field']} {change['change']}"
                    f" ({change['old_type'] or '-'} -> {change['new_type'] or '-'})"
                )
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "streams": results}, default=str))
    else:
        click.echo(f"run {run_id}: {len(pairs) - len(failed)} ok, {len(failed)} failed")
    if failed:
        sys.exit(1)


def _reset(source: str, streams: list[str]) -> None:
    from tieout.extract.run import StreamBusy, reset_state

    try:
        reset = reset_state(source, streams)
    except StreamBusy as exc:
        raise click.ClickException(str(exc)) from None
    for name in streams:
        what = "state reset" if name in reset else "had no state"
        click.echo(f"{source}.{name}: {what}; the next run starts from the beginning")


def _line(name: str, f: dict[str, Any]) -> str:
    diff = "" if f.get("total_diff") is None else f" total_diff={f['total_diff']}"
    return (
        f"{name:<24} rows={f.get('rows', 0)} records={f.get('records', 0)} "
        f"unchanged={f.get('unchanged', 0)} pages={f.get('pages', 0)} "
        f"quarantined={f.get('quarantined', 0)} duplicates={f.get('duplicates', 0)} "
        f"retries={f.get('retries', 0)} 429s={f.get('http_429', 0)} "
        f"deleted={f.get('deleted', 0)}{diff} {f.get('wall_s', 0)}s"
    )


if __name__ == "__main__":
    extract()
