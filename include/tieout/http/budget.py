"""The request budget of a source: a token bucket every request waits on, in this process
(`LocalBudget`) or shared by every task of the source through `ops.request_budget`
(`PostgresBudget`). A Retry-After pauses the whole source, not only the request that met it.

It must never let a source's rate be exceeded, and never make a caller wait without a debt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg


class RequestBudget(Protocol):
    def acquire(self) -> None: ...

    def penalize(self, seconds: float) -> None: ...


class LocalBudget:
    """A token bucket for one process: `rate` requests per second, bursts up to `capacity`."""

    def __init__(self, rate: float, capacity: float, sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.refreshed = time.monotonic()
        self.sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.refreshed) * self.rate) - 1
            self.refreshed = now
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            self.tokens = min(self.tokens, -seconds * self.rate)


class PostgresBudget:
    """The token bucket of one source kept in ops.request_budget, shared by every process.

    Tokens are reserved with one atomic UPDATE, a lease of several at a time (at most a tenth
    of a second's worth, never more than a quarter of the burst), so a fast stream does not
    pay a database round trip per request. A negative balance is a debt the caller sleeps
    off, so concurrent tasks queue fairly without polling. Tokens are taken before they are
    spent, so the source's rate is never exceeded; at most one lease is left unspent.
    """

    SQL = """
        insert into ops.request_budget as b (source, tokens, capacity, rate, refreshed_at)
        values (%(source)s, %(capacity)s - %(lease)s, %(capacity)s, %(rate)s, clock_timestamp())
        on conflict (source) do update set
            tokens = least(excluded.capacity,
                           b.tokens + extract(epoch from clock_timestamp() - b.refreshed_at)
                                      * excluded.rate) - %(lease)s,
            capacity = excluded.capacity,
            rate = excluded.rate,
            refreshed_at = clock_timestamp()
        returning tokens
    """

    def __init__(self, conn: psycopg.Connection[Any], source: str, rate: float, capacity: float):
        self.conn = conn
        self.source = source
        self.rate = rate
        self.capacity = capacity
        self.lease = max(1, min(int(capacity // 4), int(rate * 0.1)))
        self.leased = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self.leased > 0:
                self.leased -= 1
                return
            row = self.conn.execute(
                self.SQL,
                {
                    "source": self.source,
                    "capacity": self.capacity,
                    "rate": self.rate,
                    "lease": self.lease,
                },
            ).fetchone()
            self.leased = self.lease - 1
        tokens = float(row[0]) if row else 0.0
        if tokens < 0:
            time.sleep(-tokens / self.rate)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            self.leased = 0  # what this process holds is void: the source asked for a pause
            self.conn.execute(
                """update ops.request_budget
                   set tokens = least(tokens, -%s * rate) where source = %s""",
                (seconds, self.source),
            )
