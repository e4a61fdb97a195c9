"""PostgreSQL sessions kept for the length of one dbt invocation, instead of one per node.

dbt-postgres opens a new connection for every node and closes it when the node is done. Each
one is a new server process that authenticates and loads the catalog entries of every table
its first statements touch; for a nightly rerun of 66 small nodes that was a tenth of the run.
Inside `reused_sessions()` a closed node's session is reset and handed to the next node instead:

- what the node began is rolled back, then `DISCARD ALL` drops its temporary tables, prepared
  statements, settings and locks, so a node starts from the state a new connection has (the
  profile's role is set again; its search_path is a connection option, which RESET keeps);
- a session that cannot be reset is closed, and the next node opens a new one;
- when the invocation ends every kept session is closed and dbt's own methods are back.

Only `tieout.transform.runner.run_dbt` uses it, under its process-wide lock; Cosmos tasks run one
node each and keep dbt's behaviour.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

RESET_SQL = "discard all"


class SessionPool:
    """Open psycopg2 connections no node is using."""

    def __init__(self) -> None:
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.opened = 0
        self.reused = 0

    def take(self) -> Any | None:
        with self._lock:
            while self._idle:
                handle = self._idle.pop()
                if not handle.closed:
                    self.reused += 1
                    return handle
        return None

    def give(self, handle: Any, role: str | None) -> None:
        """Reset a node's session and keep it; close it instead if the reset fails."""
        try:
            handle.rollback()
            autocommit = handle.autocommit
            handle.autocommit = True
            with handle.cursor() as cursor:
                cursor.execute(RESET_SQL)
                if role:
                    cursor.execute(f"set role {role}")
            handle.autocommit = autocommit
        except Exception:  # noqa: BLE001 - a session that cannot be reset is not reused
            with contextlib.suppress(Exception):
                handle.close()
            return
        with self._lock:
            self._idle.append(handle)

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for handle in idle:
            with contextlib.suppress(Exception):
                handle.close()


@contextlib.contextmanager
def reused_sessions() -> Iterator[SessionPool]:
    """Within the block, dbt-postgres hands a finished node's session to the next node."""
    from dbt.adapters.contracts.connection import ConnectionState
    from dbt.adapters.postgres.connections import PostgresConnectionManager

    pool = SessionPool()
    if os.environ.get("DBT_RECORDER_MODE"):  # dbt's record/replay wraps handles: leave it be
        yield pool
        return
    dbt_open = PostgresConnectionManager.__dict__["open"]
    dbt_close = PostgresConnectionManager.__dict__.get("close")

    def open_reused(cls: type, connection: Any) -> Any:
        if connection.state == ConnectionState.OPEN:
            return connection
        handle = pool.take()
        if handle is None:
            pool.opened += 1
            return dbt_open.__func__(cls, connection)
        connection.handle = handle
        connection.state = ConnectionState.OPEN
        return connection

    def close_reused(cls: type, connection: Any) -> Any:
        if connection.state in {ConnectionState.CLOSED, ConnectionState.INIT}:
            return connection
        # the raw attribute: the property would open a connection that was never opened
        handle, connection.handle = connection._handle, None
        connection.transaction_open = False
        connection.state = ConnectionState.CLOSED
        if handle is not None and hasattr(handle, "rollback"):
            pool.give(handle, connection.credentials.role)
        return connection

    PostgresConnectionManager.open = classmethod(open_reused)  # type: ignore[method-assign,assignment]
    PostgresConnectionManager.close = classmethod(close_reused)  # type: ignore[method-assign,assignment]
    try:
        yield pool
    finally:
        PostgresConnectionManager.open = dbt_open  # type: ignore[method-assign]
        if dbt_close is None:
            del PostgresConnectionManager.close
        else:
            PostgresConnectionManager.close = dbt_close  # type: ignore[method-assign]
        pool.close_all()
