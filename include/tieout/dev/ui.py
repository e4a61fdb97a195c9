"""Start the Airflow UI (and the parts that make it useful) on this machine.

Binds to 127.0.0.1 only; Airflow's log servers keep 8793/8794, so the UI uses its own port.
The scheduler runs without its job schedule: it runs the nights someone triggers (from the UI,
the REST API or a webhook) and never one by the DAG's schedule ("0 2 * * *", which applies where
tieout is deployed), so starting the UI never starts a night nobody asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click
import requests

from tieout.dev import local_airflow


def airflow_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "airflow")


def migrate_metadata(env: dict[str, str]) -> None:
    result = subprocess.run(
        [airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError("airflow db migrate failed:\n" + result.stderr[-3000:])
    local_airflow.sync_pools(env)


def wait_healthy(port: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"the Airflow UI did not become healthy at {url} within {timeout_s:.0f}s")


SCHEDULE_NOTE = (
    "schedule:   none here. tieout_nightly runs at 02:00 UTC (0 2 * * *) where tieout is "
    "deployed; this local scheduler runs only the nights you trigger (Trigger in the UI)"
)


def environment(port: int, executor: str = "LocalExecutor") -> dict[str, str]:
    """Airflow's environment for the local UI: the scheduler creates no run from a schedule."""
    env = local_airflow.environment(ui_port=port, executor=executor)
    env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    return env


def start_background(
    port: int, log_path: str, executor: str = "LocalExecutor"
) -> subprocess.Popen[bytes]:
    """`airflow standalone` in the background; the caller stops it."""
    env = environment(port, executor)
    migrate_metadata(env)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(
        [airflow_bin(), "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run(port: int) -> None:
    env = environment(port)
    click.echo("migrating Airflow's metadata database ...")
    migrate_metadata(env)
    click.echo(f"Airflow UI: http://127.0.0.1:{port}")
    if sys.stdout.isatty():
        click.echo(f"login:      {local_airflow.ADMIN_USER} / {local_airflow.admin_password()}")
    else:
        click.echo(
            f"login:      {local_airflow.ADMIN_USER} (password in {local_airflow.passwords_file()})"
        )
    click.echo(SCHEDULE_NOTE)
    click.echo("press Ctrl+C to stop")
    os.execve(airflow_bin(), [airflow_bin(), "standalone"], env)  # noqa: S606
