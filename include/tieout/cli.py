"""The `tieout` command: one entry point for every stage, the sandbox, the database and Airflow.

Subcommands are imported only when invoked, so `tieout --help` stays fast and a broken
stage cannot stop the others from running.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

# name -> ("module:attribute" of a click command, one-line help); stages add themselves here.
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("tieout.cli:db_group", "The warehouse database (embedded unless configured)."),
    "config": ("tieout.cli:config_group", "Check the YAML under include/config/."),
    "airflow": ("tieout.cli:airflow_cmd", "The airflow CLI with tieout's home, DAGs and database."),
    "backfill": (
        "tieout.cli:backfill_cmd",
        "Backfill tieout_nightly for a date range (Airflow backfill).",
    ),
    "pools": (
        "tieout.cli:pools_cmd",
        "Create or resize one Airflow pool per configured source.",
    ),
    "ui": ("tieout.cli:ui_cmd", "Start the Airflow UI locally and print the URL and login."),
    "summary": ("tieout.cli:summary_cmd", "What the latest run did, stage by stage."),
    "sandbox": (
        "tieout_sandbox.cli:sandbox",
        "The four sandbox business systems (the tieout-sandbox package).",
    ),
    "extract": ("tieout.extract.cli:extract", "Extract and load sources into raw."),
    "transform": ("tieout.transform.cli:transform", "Build canonical tables with dbt."),
    "docs": ("tieout.transform.cli:docs", "Generate the dbt docs and print the path."),
    "demo": ("tieout.dev.demo:demo", "Run the whole product locally, end to end."),
    "validate": (
        "tieout.validate.cli:validate",
        "Validate raw and canonical tables with Great Expectations.",
    ),
    "reconcile": (
        "tieout.cli:reconcile_cmd",
        "Compare every system with canonical; write findings.",
    ),
    "findings": ("tieout.reconcile.cli:findings", "List, show and waive findings."),
    "report": ("tieout.report.cli:report", "Build the drift report for a run."),
    "webhooks": (
        "tieout.webhooks.cli:webhooks",
        "Receive signed source events; run that source's extract soon.",
    ),
    "reverse-etl": (
        "tieout.reverse_etl.cli:reverse_etl",
        "Push agreed values back to the systems that are wrong.",
    ),
    "health": (
        "tieout.health.cli:health",
        "Every source and reverse-ETL target: healthy, degraded or failing, and why.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _, attr = COMMANDS[cmd_name][0].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            package = (exc.name or "").partition(".")[0]
            if package != module_name.partition(".")[0] or package == "tieout":
                raise
            # a development package that is not installed here (the production image has none)
            fail(
                f"`tieout {cmd_name}` needs the {package} package, which is not installed here: "
                f"it is part of the development install (`make install`), not of tieout itself"
            )
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tieout keeps your business systems in agreement."""


def fail(message: str, code: int = 2) -> NoReturn:
    click.secho(f"tieout: {message}", fg="red", err=True)
    sys.exit(code)


# ---------------------------------------------------------------- db


@click.group("db")
def db_group() -> None:
    """The warehouse database: the embedded PostgreSQL unless one is configured."""


@db_group.command("status")
def db_status() -> None:
    from tieout import db
    from tieout.db import embedded

    configured = db.configured_url()
    if configured:
        click.echo(f"configured warehouse: {db.redact(configured)}")
        try:
            with db.connect(configured) as conn:
                version = conn.execute("show server_version").fetchone()
            click.echo(f"reachable: yes (PostgreSQL {version[0] if version else '?'})")
        except db.DatabaseUnreachable as exc:
            fail(str(exc))
        return
    state = embedded.status()
    click.echo("embedded PostgreSQL (pgserver)")
    click.echo(f"  running:  {'yes, pid ' + str(state.pid) if state.running else 'no'}")
    click.echo(f"  url:      {db.redact(state.url())}")
    click.echo(f"  passwords: {embedded.passwords_file()} (mode 0600)")
    click.echo(f"  data:     {state.data_dir}")
    click.echo(f"  log:      {state.log_file}")


@db_group.command("start")
def db_start() -> None:
    from tieout import db
    from tieout.db import embedded, migrate

    if _configured_guard("start"):
        return
    try:
        server, note = embedded.start()
    except embedded.EmbeddedError as exc:
        fail(str(exc))
        return
    if note:
        click.echo(note)
    applied = migrate.migrate()
    click.echo(f"embedded PostgreSQL running at {db.redact(server.url())}")
    click.echo(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")


@db_group.command("stop")
def db_stop() -> None:
    from tieout.db import embedded

    if _configured_guard("stop"):
        return
    click.echo("stopped" if embedded.stop() else "was not running")


@db_group.command("url")
def db_url() -> None:
    """Print the warehouse URL (password redacted)."""
    from tieout import db

    click.echo(db.redact(db.warehouse_url()))


@db_group.command("migrate")
def db_migrate() -> None:
    from tieout import db
    from tieout.db import migrate

    try:
        applied = migrate.migrate()
    except db.DatabaseUnreachable as exc:
        fail(str(exc))
        return
    click.echo(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")


@db_group.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def db_psql(args: tuple[str, ...]) -> None:
    """Open psql on the warehouse (extra arguments go to psql)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    from tieout import db
    from tieout.db import embedded

    # the password goes to psql through its environment, never on a command line others can read
    parts = urlsplit(db.warehouse_url())
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    url = urlunsplit(
        (parts.scheme, f"{user}@{host}" if user else host, parts.path, parts.query, "")
    )
    os.execve(embedded.psql_path(), [embedded.psql_path(), url, *args], env)  # noqa: S606


def _configured_guard(action: str) -> bool:
    from tieout import db

    configured = db.configured_url()
    if configured:
        click.echo(
            f"a warehouse is configured ({db.redact(configured)}); "
            f"tieout does not {action} servers it does not own"
        )
        return True
    return False


# ---------------------------------------------------------------- config


@click.group("config")
def config_group() -> None:
    """The YAML under include/config/."""


@config_group.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None)
def config_check(directory: str | None) -> None:
    """Validate every config file; exit non-zero listing each problem."""
    from pathlib import Path

    from tieout.config import ConfigError, load_config

    try:
        config = load_config(Path(directory) if directory else None)
    except ConfigError as exc:
        for problem in exc.problems:
            click.secho(problem, fg="red", err=True)
        sys.exit(2)
    streams = sum(len(s.streams) for s in config.sources.values())
    click.echo(
        f"ok: {len(config.sources)} sources ({streams} streams), "
        f"{len(config.entities)} entities, {len(config.reverse_etl.targets)} reverse ETL targets"
    )


# ---------------------------------------------------------------- airflow


@click.command(
    "airflow", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def airflow_cmd(args: tuple[str, ...]) -> None:
    """Run the airflow CLI with tieout's AIRFLOW_HOME, DAGs and database."""
    from tieout.dev import local_airflow

    env = local_airflow.environment()
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    sys.exit(subprocess.call([airflow, *args], env=env))


@click.command("pools")
def pools_cmd() -> None:
    """Create or resize one Airflow pool per configured source (run after `airflow db migrate`).

    Uses the Airflow configuration in the environment when AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    is set (a server or container), otherwise tieout's own local Airflow.
    """
    from tieout.dev import local_airflow

    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env = dict(os.environ)
        home = Path(env["AIRFLOW_HOME"]) if env.get("AIRFLOW_HOME") else None
    else:
        env, home = local_airflow.environment(), None
    try:
        pools = local_airflow.sync_pools(env, home)
    except local_airflow.PoolsNotCreated as exc:
        fail(str(exc))
    for name, slots in pools.items():
        click.echo(f"{name}: {slots} slots")


@click.command("backfill")
@click.option("--start", "start", required=True, help="First logical date (YYYY-MM-DD).")
@click.option("--end", "end", required=True, help="Last logical date, inclusive (YYYY-MM-DD).")
@click.option(
    "--reprocess",
    type=click.Choice(["none", "completed", "failed"]),
    default="failed",
    show_default=True,
    help="Which existing runs to run again.",
)
@click.option("--dry-run", is_flag=True, help="Show the runs it would create.")
def backfill_cmd(start: str, end: str, reprocess: str, dry_run: bool) -> None:
    """Backfill tieout_nightly through Airflow's own backfill (the scheduler runs it;
    `tieout ui` starts one)."""
    from datetime import date

    from tieout.dev import local_airflow

    for name, value in (("--start", start), ("--end", end)):
        try:
            date.fromisoformat(value)
        except ValueError:
            fail(f"{name}: expected a date like 2026-11-01, got {value!r}")
    if start > end:
        fail(f"--start {start} is after --end {end}")
    args = [
        "backfill",
        "create",
        "--dag-id",
        "tieout_nightly",
        "--from-date",
        start,
        "--to-date",
        end,
        "--reprocess-behavior",
        reprocess,
        "--max-active-runs",
        "1",
    ]
    if dry_run:
        args.append("--dry-run")
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    sys.exit(subprocess.call([airflow, *args], env=local_airflow.environment()))


@click.command("ui")
@click.option("--port", default=8280, show_default=True)
def ui_cmd(port: int) -> None:
    """Start the Airflow UI (api-server, scheduler, dag-processor, triggerer) locally."""
    from tieout.dev import ui

    ui.run(port)


# ---------------------------------------------------------------- summary


# ---------------------------------------------------------------- reconcile (and report)


def _known_entity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    from tieout.reconcile.cli import known_names

    return known_names("entity")(ctx, param, value)


@click.command("reconcile")
@click.option("--run-id", default=None, help="Run id (default: TIEOUT_RUN_ID or a new one).")
@click.option(
    "--entity",
    "entities",
    multiple=True,
    callback=_known_entity,
    help="Only this entity (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="The run's figures as one JSON object.")
@click.option("--no-report", is_flag=True, help="Do not build the drift report afterwards.")
def reconcile_cmd(
    run_id: str | None, entities: tuple[str, ...], as_json: bool, no_report: bool
) -> None:
    """Compare every system with canonical; write findings, balances and the drift run."""
    # two stages in one command, composed here: the reconcile stage never imports the report
    from tieout.reconcile.cli import show_run
    from tieout.reconcile.run import reconcile as run_reconcile

    figures = run_reconcile(run_id, entities or None)
    paths: dict[str, str] = {}
    if not no_report:
        from tieout.report.build import report

        paths = {k: str(v) for k, v in report(figures["run_id"]).items()}
    if as_json:
        click.echo(json.dumps({**figures, "report": paths}, default=str))
        return
    show_run(figures, paths)


@click.command("summary")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--run-id", default=None)
def summary_cmd(as_json: bool, run_id: str | None) -> None:
    """What the latest run did, stage by stage."""
    from tieout import runs

    result: dict[str, Any] = runs.summary(run_id=run_id)
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    for line in runs.format_summary(result):
        click.echo(line)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - last line of defence: clear message, no trace
        from tieout.config import ConfigError
        from tieout.db import DatabaseUnreachable
        from tieout.db.migrate import MigrationError

        if isinstance(exc, ConfigError | DatabaseUnreachable | MigrationError):
            fail(str(exc))
        raise


if __name__ == "__main__":
    main()
