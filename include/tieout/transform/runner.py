"""How tieout calls dbt: the profile from the warehouse URL through environment variables.

profiles.yml only names env vars; the password lives in the environment of the dbt call and
is never written to a file or a log line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tieout import db
from tieout.memory import quiet_gc
from tieout.paths import dbt_project_dir

# dbtRunner keeps global state; one invocation per process at a time.
_LOCK = threading.Lock()
MESSAGE_LINES = 4  # of each failing node's message, enough for the error and its hint
# Called as each node finishes: nodes done, nodes in the run (None until dbt says), the node's
# unique_id and its status.
NodeFinished = Callable[[int, "int | None", str, str], None]


class DbtError(RuntimeError):
    """A dbt command failed; the message names the failing nodes and dbt's own reason."""


@dataclass
class DbtResult:
    args: list[str]
    success: bool
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node["status"]] = counts.get(node["status"], 0) + 1
        return counts

    def failures(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes if n["status"] in {"error", "fail", "runtime error"}]


def as_of_date_env(as_of_date: str | None) -> dict[str, str]:
    """The environment that gives dbt the as-of date (tieout.transform.cosmos.AS_OF_DATE_ENV)."""
    from tieout.transform.cosmos import AS_OF_DATE_ENV

    return {AS_OF_DATE_ENV: as_of_date} if as_of_date else {}


def dbt_env(url: str | None = None) -> dict[str, str]:
    """The TIEOUT_DBT_* variables profiles.yml reads: the warehouse (or `url`'s server and
    database) as tieout_transformer, so every relation dbt makes is the transformer's."""
    url = db.role_url("transformer", url)
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or query.get("host") or "localhost"
    env = {
        "TIEOUT_DBT_HOST": unquote(host),
        "TIEOUT_DBT_PORT": str(parts.port or query.get("port") or 5432),
        "TIEOUT_DBT_USER": unquote(parts.username or query.get("user") or "postgres"),
        "TIEOUT_DBT_PASSWORD": unquote(parts.password or query.get("password") or ""),
        "TIEOUT_DBT_DBNAME": unquote(parts.path.lstrip("/") or query.get("dbname") or "postgres"),
        "TIEOUT_DBT_SSLMODE": query.get("sslmode", "prefer"),
        "DBT_PROFILES_DIR": str(dbt_project_dir()),
        "DBT_PROJECT_DIR": str(dbt_project_dir()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DO_NOT_TRACK": "1",
        # dbt's default, debug, logs every statement and connection event, a tenth of a nightly
        # rerun's CPU; each node's main statement is in target/run/ all the same.
        # DBT_LOG_LEVEL_FILE=debug in the environment brings every statement back.
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "info"),
    }
    return env


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _node_rows(result: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        response = getattr(item, "adapter_response", None) or {}
        rows.append(
            {
                "unique_id": getattr(node, "unique_id", None),
                "resource_type": str(getattr(node, "resource_type", "")),
                "status": str(getattr(item, "status", "")),
                "execution_time": round(float(getattr(item, "execution_time", 0.0) or 0.0), 3),
                "rows_affected": response.get("rows_affected")
                if isinstance(response, dict)
                else None,
                "message": getattr(item, "message", None),
                "failures": getattr(item, "failures", None),
            }
        )
    return rows


def console_log_level() -> str:
    """dbt's console log level for tieout's own invocations: none unless DBT_LOG_LEVEL says.

    dbt's console log formats a line for every event, shown or not (4% of a nightly rerun);
    tieout echoes dbt's warnings and errors itself (ConsoleEcho) and reports progress through a
    callback. Cosmos tasks keep dbt's console log: it is their Airflow task log.
    """
    return os.environ.get("DBT_LOG_LEVEL", "none")


class ConsoleEcho:
    """A dbt event callback: with dbt's console log off, its warnings and errors go to stderr
    (the password masked), and each finished node is reported to `on_node`."""

    def __init__(self, password: str, echo: bool, on_node: NodeFinished | None) -> None:
        self.password = password
        self.echo = echo
        self.on_node = on_node
        self.done = 0
        self.total: int | None = None

    def __call__(self, event: Any) -> None:
        info = event.info
        if self.echo and info.level in ("warn", "error") and info.msg:
            text = info.msg.replace(self.password, "***") if self.password else info.msg
            print(text, file=sys.stderr, flush=True)
        if info.name == "LogStartLine" and self.total is None:
            self.total = int(event.data.total) or None
        elif info.name == "NodeFinished" and self.on_node is not None:
            self.done += 1
            self.on_node(
                self.done, self.total, event.data.node_info.unique_id, event.data.run_result.status
            )


def run_dbt(
    args: list[str],
    url: str | None = None,
    project_dir: Path | None = None,
    check: bool = True,
    on_node: NodeFinished | None = None,
    env: dict[str, str] | None = None,
) -> DbtResult:
    """Run one dbt command in-process against the warehouse; raise DbtError when it fails.
    `env`: more environment variables for this call (the as-of date)."""
    from dbt.cli.main import dbtRunner

    project = project_dir or dbt_project_dir()
    env = {**dbt_env(url), **(env or {})}
    env["DBT_PROFILES_DIR"] = env["DBT_PROJECT_DIR"] = str(project)
    full_args = [*args, "--project-dir", str(project), "--profiles-dir", str(project)]
    env["DBT_LOG_LEVEL"] = console_log_level()
    echo = ConsoleEcho(env["TIEOUT_DBT_PASSWORD"], env["DBT_LOG_LEVEL"] == "none", on_node)
    # dbt allocates heavily per node (contexts, events, agate tables), little of it cyclic:
    # with the GC quiet the scale-1 bench's first build ran 4-13% faster, a rerun 7-11%
    with _LOCK, _environment(env), quiet_gc(200_000):
        outcome = dbtRunner(callbacks=[echo]).invoke(full_args)
    result = DbtResult(
        args=list(args), success=bool(outcome.success), nodes=_node_rows(outcome.result)
    )
    if check and not result.success:
        raise DbtError(
            _failure_message(args, result, outcome.exception, env["TIEOUT_DBT_PASSWORD"])
        )
    return result


def _failure_message(
    args: list[str], result: DbtResult, exception: BaseException | None, password: str
) -> str:
    lines = [f"dbt {' '.join(args)} failed"]
    if exception is not None:
        text = str(exception)
        if password:
            text = text.replace(password, "***")
        lines.append(f"  {type(exception).__name__}: {text}")
    for node in result.failures():
        # dbt's first line only says what kind of error and where ("Database Error in model
        # x"); the database's or the macro's own words follow it
        message = [m.strip() for m in (node["message"] or "").splitlines() if m.strip()]
        text = schema_change_message(node["unique_id"], message) or " ".join(
            message[:MESSAGE_LINES]
        )
        lines.append(f"  {node['status']}: {node['unique_id']}: {text}")
    return "\n".join(lines)


# dbt's words when an incremental model with on_schema_change='fail' (every tieout model, from
# dbt_project.yml) returns other columns than its table has
SCHEMA_CHANGED = "schemas on this incremental model are out of sync"
SCHEMA_DETAILS = (
    "Source columns not in target:",
    "Target columns not in source:",
    "New column types:",
)


def schema_change_message(unique_id: str, message: list[str]) -> str | None:
    """For dbt's on_schema_change='fail' error, which columns changed and tieout's command that
    rebuilds the model (dbt's own advice, another on_schema_change, is not tieout's); None for
    any other error."""
    if not any(SCHEMA_CHANGED in line for line in message):
        return None
    changes = []
    for line in message:
        for label in SCHEMA_DETAILS:
            if line.startswith(label):
                # dbt lists column objects (PostgresColumn(column='x', dtype='text', ...))
                names = re.findall(r"column='([^']*)'", line)
                value = ", ".join(names) if names else line[len(label) :].strip()
                if value not in ("", "[]"):
                    changes.append(f"{label[:-1].lower()}: {value}")
    model = unique_id.rsplit(".", 1)[-1]
    changed = "; ".join(changes) or "see dbt_project/logs"
    return (
        f"the columns of {model} changed ({changed}); the table is left as it was; rebuild it "
        f"with: tieout transform --full-refresh --select {model}"
    )
