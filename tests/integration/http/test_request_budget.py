"""The request budget in ops.request_budget is shared: tasks of one source together stay
within its rate, and a 429's pause reaches every task."""

from __future__ import annotations

import threading
import time

import psycopg

from tieout.http.budget import PostgresBudget

RATE, BURST, SECONDS = 100.0, 20.0, 1.5


def test_two_tasks_share_one_rate(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as setup:
        setup.execute("delete from ops.request_budget where source = 'budget-shared'")
    counts = [0, 0]
    deadline = time.monotonic() + SECONDS

    def task(index: int) -> None:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            budget = PostgresBudget(conn, "budget-shared", RATE, BURST)
            while True:
                budget.acquire()
                if time.monotonic() >= deadline:
                    return
                counts[index] += 1

    threads = [threading.Thread(target=task, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # a full bucket, the rate over the window, and at most one unspent lease per task
    lease = max(1, min(int(BURST // 4), int(RATE * 0.1)))
    assert sum(counts) <= BURST + RATE * SECONDS + 2 * lease
    assert sum(counts) >= 0.6 * RATE * SECONDS  # shared, not starved
    assert min(counts) >= 0.2 * RATE * SECONDS  # and both tasks got their turn


def test_a_pause_reaches_every_task(warehouse_url: str) -> None:
    with (
        psycopg.connect(warehouse_url, autocommit=True) as first,
        psycopg.connect(warehouse_url, autocommit=True) as second,
    ):
        first.execute("delete from ops.request_budget where source = 'budget-pause'")
        one = PostgresBudget(first, "budget-pause", RATE, BURST)
        other = PostgresBudget(second, "budget-pause", RATE, BURST)
        other.acquire()  # holds a lease of tokens taken before the pause
        one.acquire()
        one.penalize(0.5)  # a 429 with Retry-After: 0.5
        started = time.monotonic()
        for _ in range(other.lease):
            other.acquire()
        waited = time.monotonic() - started
    # the lease taken before the pause may be spent; the next token waits out the debt
    assert waited >= 0.4
