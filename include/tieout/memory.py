"""Process-wide memory settings for the hot paths (extract's loader, dbt invocations)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_gc(young: int) -> Iterator[None]:
    """The cyclic GC mostly out of the way, restored afterwards: objects alive before (Airflow,
    dbt, the config) are frozen out of every collection and the young generation may grow to
    `young` objects. For work that allocates heavily and rarely builds cycles, where
    collections find little."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
