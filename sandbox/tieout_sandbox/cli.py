"""`tieout sandbox ...`: seed, run, mutate and break the sandbox systems from the shell.

It prints paths, counts and URLs, never a credential.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click

from tieout_sandbox import MAX_SCALE, SYSTEMS, datadir, server

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Sandbox data folder (default: TIEOUT_SANDBOX_DIR or <state dir>/sandbox).",
)


@click.group()
def sandbox() -> None:
    """Four fake business systems (crm, erp, billing, shop) with known divergence."""


def check_scale(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value) or not 0 < value <= MAX_SCALE:
        raise click.BadParameter(
            f"expected a number above 0 and at most {MAX_SCALE:g} "
            f"(1 = ~1,000 customers), got {value:g}"
        )
    return value


@sandbox.command()
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    callback=check_scale,
    help=f"1 = ~1,000 customers, ~10,000 orders; above 0, at most {MAX_SCALE:g}.",
)
@click.option("--seed", "seed_value", type=int, default=42, show_default=True)
@click.option(
    "--as-of",
    default=None,
    help="End of the seeded history (ISO time, default 2026-11-01T00:00:00Z).",
)
@DATA_DIR
def seed(scale: float, seed_value: int, as_of: str | None, data_dir: Path | None) -> None:
    """Replace the sandbox data with a fresh company and its ground truth."""
    from tieout_sandbox import generate

    folder = datadir.resolve(data_dir)
    if any(entry["running"] for entry in server.status(folder).values()):
        raise click.ClickException("the sandbox is running: `tieout sandbox down` first")
    summary = generate.seed(
        folder, scale, seed_value, as_of or generate.DEFAULT_AS_OF, progress=scale >= 10
    )
    click.echo(f"seeded scale {scale:g} seed {seed_value} in {summary['seconds']} s into {folder}")
    click.echo("entities: " + ", ".join(f"{k} {v:,}" for k, v in summary["entities"].items()))
    click.echo(f"ground truth: {summary['ground_truth']}")


@sandbox.command()
@click.option(
    "--base-port", type=int, default=None, help="crm on this port, erp +1, billing +2, shop +3."
)
@DATA_DIR
def up(base_port: int | None, data_dir: Path | None) -> None:
    """Start the four services in the background (already running ones are left alone)."""
    started = time.monotonic()
    try:
        services = server.up(data_dir, base_port=base_port)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error
    for system, entry in services.items():
        state = "started" if entry["started"] else "already up"
        click.echo(f"{system:8} {entry['url']:28} pid {entry['pid']:<8} {state}")
    click.echo(f"ready in {time.monotonic() - started:.1f} s")


@sandbox.command()
@DATA_DIR
def down(data_dir: Path | None) -> None:
    """Stop the services this sandbox started."""
    stopped = server.down(data_dir)
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@sandbox.command()
@DATA_DIR
def status(data_dir: Path | None) -> None:
    """Show each service's URL, pid and health."""
    for system, entry in server.status(data_dir).items():
        health = (
            "healthy"
            if entry["healthy"]
            else ("running, not answering" if entry["running"] else "down")
        )
        click.echo(f"{system:8} {entry['url'] or '-':28} pid {entry['pid'] or '-':<8} {health}")


@sandbox.command()
@DATA_DIR
def truth(data_dir: Path | None) -> None:
    """Print the path of ground_truth.json."""
    path = datadir.ground_truth_path(datadir.resolve(data_dir))
    if not path.exists():
        raise click.ClickException(f"{path} does not exist: run `tieout sandbox seed` first")
    click.echo(str(path))


@sandbox.command()
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True)
@DATA_DIR
def mutate(days: int, data_dir: Path | None) -> None:
    """Apply days of realistic change and extend the ground truth."""
    from tieout_sandbox import mutate as mutation

    summary = mutation.mutate(datadir.resolve(data_dir), days)
    click.echo(json.dumps(summary))


def knob_values(pairs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected name=value", param_hint="KNOBS")
        if name == "rename_field":
            old, sep, new = text.partition(":")
            if not sep:
                raise click.BadParameter(
                    "rename_field=<dotted.path>:<new_name>", param_hint="KNOBS"
                )
            values.setdefault("rename_field", {})[old] = new
            continue
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError as error:
            raise click.BadParameter(
                f"{pair!r}: value must be a number", param_hint="KNOBS"
            ) from error
    return values


@sandbox.command()
@click.argument("system", type=click.Choice(SYSTEMS))
@click.argument("knobs", nargs=-1)
@click.option("--reset", is_flag=True, help="Turn every fault off first.")
@DATA_DIR
def fault(system: str, knobs: tuple[str, ...], reset: bool, data_dir: Path | None) -> None:
    """Set fault knobs, e.g. `fault billing error_rate=0.1 latency_ms=200 rename_field=email:mail`.

    Knobs: outage_status (e.g. 500: every API request, token included, answers it; 0: up),
    error_rate, rate_429, retry_after_seconds, latency_ms, timeout_rate, timeout_seconds,
    broken_json_rate, wrong_type_rate, missing_key_rate, rename_field, drop_write_rate,
    rate_limit_per_second, token_ttl_seconds, seed; billing's webhooks: webhook_loss,
    webhook_duplicate, webhook_delay_rate, webhook_delay_ms, webhook_bad_signature.
    Without knobs it shows the current ones.
    """
    if reset:
        server.clear_faults(system, data_dir)
    try:
        current = server.set_faults(system, data_dir, **knob_values(knobs))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="KNOBS") from error
    click.echo(json.dumps(current, sort_keys=True))


@sandbox.command()
@click.argument("url", required=False)
@click.option("--off", is_flag=True, help="Stop sending events.")
@DATA_DIR
def webhook(url: str | None, off: bool, data_dir: Path | None) -> None:
    """Send billing's signed events to URL, e.g. http://127.0.0.1:8190/webhooks/billing.

    Without URL it shows where events go and what the sender did (sent, lost, duplicated ...).
    """
    if url is None and not off:
        folder = datadir.resolve(data_dir)
        from tieout_sandbox import webhooks

        entry = server.entry_status(server.read_services(folder).get("billing"))
        if not entry["healthy"]:
            click.echo(json.dumps({"url": webhooks.load_url(folder)}))
            return
        from tieout_sandbox.credentials import load_credentials

        answer = server.local_client().get(
            f"{entry['url']}/_admin/webhook",
            headers={"X-Sandbox-Admin": load_credentials(folder)["admin_token"]},
        )
        answer.raise_for_status()
        click.echo(json.dumps(answer.json(), sort_keys=True))
        return
    try:
        current = server.set_webhook(None if off else url, data_dir)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(current, sort_keys=True))


def main() -> None:
    """`tieout-sandbox ...`: the same commands as `tieout sandbox ...`."""
    sandbox()


if __name__ == "__main__":
    main()
