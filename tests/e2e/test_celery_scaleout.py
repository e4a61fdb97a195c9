"""Scale-out: the docker-compose topology as local processes — Airflow with the
CeleryExecutor on the machine's Redis, a scheduler, a dag-processor, an api-server and two
workers. tieout_nightly is triggered through the REST API and runs on both workers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tieout.dev import cluster as tieout_cluster

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture(scope="module")
def broker() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        time.sleep(1)
        client.ping()
    client.flushdb()
    return REDIS_URL


@pytest.fixture(scope="module")
def metadata_url(new_database: Callable[[str], ContextManager[str]]) -> Iterator[str]:
    with new_database("airflow_celery") as url:
        parts = urlsplit(url)
        yield urlunsplit(("postgresql+psycopg2", parts.netloc, parts.path, parts.query, ""))


@pytest.fixture(scope="module")
def sandbox_up(
    tmp_path_factory: pytest.TempPathFactory,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
) -> Iterator[Path]:
    """A small sandbox on free ports that the workers' extract tasks read from."""
    from tieout.transform.stage import parse_manifest
    from tieout_sandbox import SYSTEMS, generate, server

    folder = tmp_path_factory.mktemp("celery-sandbox")
    generate.seed(folder, 0.2, 11, generate.DEFAULT_AS_OF)
    server.up(folder, ports=dict(zip(SYSTEMS, server.free_ports(4), strict=True)))
    with scoped_env({"TIEOUT_SANDBOX_DIR": str(folder)}):
        parse_manifest()
        yield folder
        server.down(folder)


@pytest.fixture(scope="module")
def celery_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    broker: str,
    metadata_url: str,
    warehouse_url: str,
    sandbox_up: Path,
) -> Iterator[tieout_cluster.Cluster]:
    home = tmp_path_factory.mktemp("celery-airflow")
    # only the run the test triggers: unpausing would otherwise add tonight's scheduled run
    # beside it, twice the work for the two cores
    running = tieout_cluster.start_cluster(home, broker, metadata_url, workers=2, schedule=False)
    yield running
    running.stop()


def wait_for(condition, timeout_s: float, what: str, cluster: tieout_cluster.Cluster):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cluster.check_alive()
        result = condition()
        if result:
            return result
        time.sleep(3)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_nightly_runs_on_both_workers(
    celery_cluster: tieout_cluster.Cluster, output_dir: Path
) -> None:
    c = celery_cluster
    wait_for(
        lambda: c.call("GET", "/api/v2/dags/tieout_nightly").status_code == 200,
        180,
        "the dag-processor to parse tieout_nightly",
        c,
    )
    assert c.call("PATCH", "/api/v2/dags/tieout_nightly", json={"is_paused": False}).ok
    created = c.call("POST", "/api/v2/dags/tieout_nightly/dagRuns", json={"logical_date": None})
    assert created.status_code in (200, 201), created.text
    run_id = created.json()["dag_run_id"]

    def finished() -> str | None:
        state = c.call("GET", f"/api/v2/dags/tieout_nightly/dagRuns/{run_id}").json()["state"]
        return state if state in ("success", "failed") else None

    state = wait_for(finished, 1500, "tieout_nightly to finish", c)
    tasks = c.call(
        "GET",
        f"/api/v2/dags/tieout_nightly/dagRuns/{run_id}/taskInstances",
        params={"limit": 500},
    ).json()["task_instances"]
    summary = sorted((t["task_id"], t["state"], t["hostname"]) for t in tasks)
    (output_dir / "celery-task-hosts.txt").write_text(
        "\n".join(f"{task}\t{task_state}\t{host}" for task, task_state, host in summary)
    )
    assert state == "success", summary
    hosts = {host for _, task_state, host in summary if task_state == "success"}
    assert {"worker-1", "worker-2"} <= hosts, summary
