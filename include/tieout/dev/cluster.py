"""Airflow as local processes, the way production runs it: api-server, scheduler, dag-processor,
triggerer and, with the CeleryExecutor, workers (the docker-compose topology without Docker);
with the LocalExecutor the scheduler runs the tasks itself.

Used by `tieout demo`, bench/nightly.py and the scale-out test (tests/e2e/test_celery_scaleout.py).
It starts only processes it owns and stops all of them, and it never binds anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tieout.dev import local_airflow
from tieout.http.airflow import AirflowClient

PRELOAD_DIR = Path(__file__).resolve().parent / "preload"


def worker_hostname() -> str:
    """Airflow's hostname_callable for workers: their own name, so task instances show it."""
    return os.environ.get("TIEOUT_WORKER_NAME") or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    home: Path
    api_port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _client: AirflowClient | None = field(default=None, repr=False)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, **(extra_env or {})}
        with self.log(name).open("ab") as out:
            self.processes[name] = subprocess.Popen(
                [_airflow(), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Airflow's REST API as the admin; logs in once and again when the token expires."""
        if self._client is None:
            self._client = AirflowClient(
                self.api, local_airflow.ADMIN_USER, local_airflow.admin_password(), timeout_s=30
            )
        return self._client.request(method, path, **kwargs)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _airflow() -> str:
    return os.path.join(os.path.dirname(sys.executable), "airflow")


def environment(
    home: Path,
    api_port: int,
    metadata_url: str,
    executor: str = "CeleryExecutor",
    broker_url: str | None = None,
) -> dict[str, str]:
    """One cluster's environment; with Celery its own queue keeps clusters that share a broker
    apart. The log servers get free ports (never Airflow's default 8793/8794)."""
    env = local_airflow.environment(ui_port=api_port, executor=executor)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tieout.dev.cluster.worker_hostname",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    # task processes fork from a process that has already imported what the DAG file needs
    env["PYTHONPATH"] = os.pathsep.join([str(PRELOAD_DIR), env["PYTHONPATH"]])
    if executor == "CeleryExecutor":
        if not broker_url:
            raise ValueError("the CeleryExecutor needs a broker URL (Redis or RabbitMQ)")
        env.update(
            {
                "AIRFLOW__CELERY__BROKER_URL": broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
                + metadata_url.replace("+psycopg2", "").replace(
                    "postgresql://", "postgresql://", 1
                ),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"tieout-{secrets.token_hex(4)}",
            }
        )
    else:
        env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
        env["TIEOUT_WORKER_NAME"] = env.get("TIEOUT_WORKER_NAME") or "local"
    return env


def start_cluster(
    home: Path,
    broker_url: str | None,
    metadata_url: str,
    workers: int = 2,
    timeout_s: float = 180,
    schedule: bool = True,
    executor: str = "CeleryExecutor",
    api_port: int | None = None,
    migrate: bool = True,
) -> Cluster:
    """Migrate the metadata, then start api-server, scheduler, dag-processor, triggerer and, for
    Celery, `workers` workers. With the LocalExecutor the scheduler runs the tasks.

    With `schedule=False` the scheduler runs only the runs someone triggers: it creates no run
    from a DAG's schedule (no night nobody asked for when a DAG is unpaused)."""
    api_port = api_port or free_port()
    env = environment(home, api_port, metadata_url, executor, broker_url)
    cluster = Cluster(home, api_port, env)
    if not schedule:
        cluster.env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    if migrate:
        migrated = subprocess.run(
            [_airflow(), "db", "migrate"],
            env=cluster.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if migrated.returncode != 0:
            raise RuntimeError("airflow db migrate failed:\n" + migrated.stderr[-3000:])
        local_airflow.sync_pools(cluster.env, home)
    try:
        cluster.start("api-server", ["api-server", "--port", str(api_port)])
        cluster.start("scheduler", ["scheduler"])
        cluster.start("dag-processor", ["dag-processor"])
        # the triggerer holds the dbt tasks that wait for their model in the dbt build
        cluster.start("triggerer", ["triggerer"])
        if executor == "CeleryExecutor":
            for number in range(1, workers + 1):
                name = f"worker-{number}"
                cluster.start(
                    name,
                    [
                        "celery",
                        "worker",
                        "--celery-hostname",
                        f"{name}@%h",
                        "--queues",
                        cluster.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                        "--without-mingle",
                    ],
                    {
                        "TIEOUT_WORKER_NAME": name,
                        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    },
                )
        _wait_healthy(cluster, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_healthy(cluster: Cluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cluster.check_alive()
        try:
            health = requests.get(f"{cluster.api}/api/v2/monitor/health", timeout=2).json()
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError(
        f"Airflow (api-server, scheduler) was not healthy within {timeout_s:.0f} s; "
        f"logs in {cluster.home / 'logs'}"
    )
