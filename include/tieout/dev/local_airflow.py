"""The environment that runs Airflow 3 against tieout's own home, DAGs and database.

Used by `tieout airflow`, `tieout ui`, the demo and the tests, so all of them see the
same Airflow. It never writes credentials into files other than Airflow's own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tieout import db
from tieout.paths import airflow_home, dags_dir, project_root

UI_PORT = 8280
ADMIN_USER = "admin"


def metadata_url() -> str:
    """Airflow's metadata: TIEOUT_AIRFLOW_DATABASE_URL, else the `airflow` database beside ours."""
    if url := os.environ.get("TIEOUT_AIRFLOW_DATABASE_URL"):
        return url
    parts = urlsplit(db.warehouse_url())
    return urlunsplit(("postgresql+psycopg2", parts.netloc, "/airflow", parts.query, ""))


def passwords_file() -> Path:
    return airflow_home() / "simple_auth_manager_passwords.json"


def admin_password() -> str:
    """The local UI password, generated once and kept in Airflow's own passwords file."""
    path = passwords_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        data = json.loads(path.read_text() or "{}")
        if data.get(ADMIN_USER):
            return str(data[ADMIN_USER])
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({ADMIN_USER: password}))
    path.chmod(0o600)
    return password


def environment(ui_port: int = UI_PORT, executor: str = "LocalExecutor") -> dict[str, str]:
    """os.environ plus everything Airflow needs to find tieout."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    admin_password()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir()),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project_root() / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": env.get("AIRFLOW__CORE__EXECUTOR", executor),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file()),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ui_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{ui_port}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
            "AIRFLOW_CONN_TIEOUT_WAREHOUSE": db.warehouse_url(),
            "TIEOUT_HOME": str(project_root()),
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            "PYTHONPATH": str(project_root() / "include")
            + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            "NO_PROXY": "*",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            # a task's supervisor that has read its process's last output waits up to this
            # long to see the process exit (Airflow's default 5 s held a worker slot after a
            # third of the night's tasks); it is also the heartbeat interval (docs/operations.md)
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": env.get(
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "1"
            ),
            # an idle scheduler loop sleeps this long before it looks for finished tasks again:
            # each dbt level of the night waited on it (docs/operations.md)
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": env.get(
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.25"
            ),
            "DO_NOT_TRACK": "1",
            "SCARF_NO_ANALYTICS": "1",
        }
    )
    for name, uri in sandbox_connections().items():
        # the sandbox only fills in: a connection the user defined is never replaced
        env.setdefault(name, uri)
    return env


def pools_file(home: Path | None = None) -> Path:
    """Write the pools the DAG uses (one per source) for `airflow pools import`."""
    from tieout.orchestration import airflow_pools

    path = (home or airflow_home()) / "pools.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    pools = {
        name: {"slots": slots, "description": f"tieout source {name}", "include_deferred": False}
        for name, slots in airflow_pools().items()
    }
    path.write_text(json.dumps(pools, indent=2))
    return path


class PoolsNotCreated(RuntimeError):
    """Airflow refused the pools; tasks of those sources would wait for them forever."""


def sync_pools(env: dict[str, str], home: Path | None = None) -> dict[str, int]:
    """Create or resize one Airflow pool per configured source, from the sources as they are now.

    Runs wherever Airflow's metadata is migrated (`tieout ui`, the demo, the cluster, the
    compose init service, `tieout pools`), so a new source's pool exists before its first task.
    """
    from tieout.orchestration import airflow_pools

    wanted = airflow_pools()
    path = pools_file(home)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    result = subprocess.run(
        [airflow, "pools", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        commands = "; ".join(
            f"airflow pools set {name} {slots} 'tieout source {name}'"
            for name, slots in wanted.items()
        )
        raise PoolsNotCreated(
            f"could not create the Airflow pools {', '.join(wanted)} "
            f"({reason[-1] if reason else f'exit {result.returncode}'}); "
            f"extract tasks wait for them. Create them with: {commands}"
        )
    return wanted


def sandbox_connections() -> dict[str, str]:
    """AIRFLOW_CONN_* for the sandbox systems when the sandbox is installed and seeded."""
    try:
        from tieout_sandbox.credentials import sandbox_connections
    except ModuleNotFoundError:  # a production install: no sandbox
        return {}
    try:
        connections = sandbox_connections()
    except (FileNotFoundError, KeyError, ValueError):
        return {}
    return {f"AIRFLOW_CONN_TIEOUT_{system.upper()}": uri for system, uri in connections.items()}
