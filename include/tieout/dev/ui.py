"""Start the Airflow UI (and the parts that make it useful) on this machine.

Binds to 127.0.0.1 only; Airflow's log servers keep 8793/8794, so the UI uses its own port.
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


def start_background(
    port: int, log_path: str, executor: str = "LocalExecutor"
) -> subprocess.Popen[bytes]:
    """`airflow standalone` in the background; the caller stops it."""
    env = local_airflow.environment(ui_port=port, executor=executor)
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
    env = local_airflow.environment(ui_port=port)
    click.echo("migrating Airflow's metadata database ...")
    migrate_metadata(env)
    click.echo(f"Airflow UI: http://127.0.0.1:{port}")
    if sys.stdout.isatty():
        click.echo(f"login:      {local_airflow.ADMIN_USER} / {local_airflow.admin_password()}")
    else:
        click.echo(
            f"login:      {local_airflow.ADMIN_USER} (password in {local_airflow.passwords_file()})"
        )
    click.echo("press Ctrl+C to stop")
    os.execve(airflow_bin(), [airflow_bin(), "standalone"], env)  # noqa: S606
