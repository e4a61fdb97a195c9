"""`tieout webhooks ...`: serve the receiver, and list what it recorded. Prints no secret."""

from __future__ import annotations

import click


@click.group()
def webhooks() -> None:
    """Signed events in from the sources; each runs that source's extract soon."""


@webhooks.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 in a container.")
@click.option("--port", type=int, default=8190, show_default=True)
@click.option(
    "--trigger",
    "mode",
    type=click.Choice(["auto", "airflow", "in-process", "none"]),
    default="auto",
    show_default=True,
    help="auto: Airflow's REST API when AIRFLOW_CONN_TIEOUT_AIRFLOW_API is set, else run the "
    "extract in this process; none: record only.",
)
def serve(host: str, port: int, mode: str) -> None:
    """Receive POST /webhooks/<source>; health at /healthz, counters at /metrics."""
    import logging

    import uvicorn

    from tieout.config import ConfigError, load_config
    from tieout.db import migrate
    from tieout.webhooks import receive, trigger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    migrate.migrate()
    chosen, runner = trigger.choose_runner(mode)
    app = receive.create_app(config.sources, runner=runner, mode=chosen)
    listening = sorted(name for name, s in config.sources.items() if s.webhook is not None)
    click.echo(
        f"webhooks for {', '.join(listening) or 'no source'} on http://{host}:{port}"
        f"/webhooks/<source> (extract: {chosen})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@webhooks.command("events")
@click.option("--source", default=None)
@click.option("--limit", type=int, default=20, show_default=True)
def events(source: str | None, limit: int) -> None:
    """The latest rows of ops.webhook_events, and the refusals per reason."""
    from tieout import db

    with db.connect(role="loader", autocommit=True) as conn:
        rows = conn.execute(
            "select received_at, source, status, coalesce(reason, ''), coalesce(event_type, ''),"
            " coalesce(event_id, ''), coalesce(trigger_run, '') from ops.webhook_events"
            " where %(source)s::text is null or source = %(source)s"
            " order by id desc limit %(limit)s",
            {"source": source, "limit": limit},
        ).fetchall()
        counts = conn.execute(
            "select source, status, coalesce(reason, ''), count(*) from ops.webhook_events"
            " where %(source)s::text is null or source = %(source)s"
            " group by 1, 2, 3 order by 1, 2, 3",
            {"source": source},
        ).fetchall()
    for row in rows:
        click.echo(" ".join(str(value) for value in row))
    for name, status, reason, count in counts:
        click.echo(f"{name:10} {status:9} {reason:15} {count}")
