"""The local request budget: a token bucket that paces requests, and a Retry-After's penalty
that delays the next one."""

from __future__ import annotations

from tieout.http.budget import LocalBudget


def test_local_budget_paces_requests() -> None:
    sleeps: list[float] = []
    budget = LocalBudget(rate=10, capacity=2, sleep=sleeps.append)
    for _ in range(6):
        budget.acquire()
    # two from the burst, then four more each waiting about 0.1 s longer than the last
    assert len(sleeps) == 4
    assert sleeps == sorted(sleeps) and 0.35 <= sleeps[-1] <= 0.41


def test_budget_penalty_delays_the_next_request() -> None:
    sleeps: list[float] = []
    budget = LocalBudget(rate=10, capacity=5, sleep=sleeps.append)
    budget.penalize(2.0)
    budget.acquire()
    assert sleeps and 2.0 <= sleeps[0] <= 2.2
