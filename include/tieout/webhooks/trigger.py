"""Turn accepted events into extract runs: debounced per source, so a burst is one run.

Two ways to run: through Airflow's REST API (a run of `tieout_extract_<source>`), or, with no
Airflow configured, in this process. It must never run a source twice at once, and a failed
or skipped run loses nothing: the next event, or the nightly poll, reads from the saved cursor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from tieout.http import connections
from tieout.http.airflow import API_CONNECTION, AirflowClient

log = logging.getLogger(__name__)

BUSY_RETRY_S = 5.0


def extract_dag_id(source: str) -> str:
    return f"tieout_extract_{source}"


class Runner(Protocol):
    """Starts the extract of `streams` of `source`; returns the run id it started."""

    def __call__(self, source: str, streams: list[str]) -> str: ...


class Busy(RuntimeError):
    """The source is being extracted by someone else (the nightly run): try again later."""


def in_process(url: str | None = None) -> Runner:
    """Run the extract here, stream by stream (no Airflow configured; docs/webhooks.md)."""

    def run(source: str, streams: list[str]) -> str:
        from tieout import runs
        from tieout.extract.run import StreamBusy, extract_stream

        run_id = runs.new_run_id("webhook")
        for stream in streams:
            try:
                extract_stream(source, stream, run_id, url=url)
            except StreamBusy as busy:
                raise Busy(str(busy)) from busy
        return run_id

    return run


@dataclass
class AirflowApi(AirflowClient):
    """Starts `tieout_extract_<source>`: POST /api/v2/dags/<dag>/dagRuns (Airflow 3)."""

    trust_env: bool = False

    def __call__(self, source: str, streams: list[str]) -> str:
        run_id = f"webhook__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"streams": streams}}
        answer = self.request("POST", f"/api/v2/dags/{extract_dag_id(source)}/dagRuns", json=body)
        if answer.status_code >= 300:
            raise RuntimeError(
                f"Airflow did not start {extract_dag_id(source)}: HTTP {answer.status_code} "
                f"{answer.text[:200]}"
            )
        return run_id


def choose_runner(mode: str, url: str | None = None) -> tuple[str, Runner | None]:
    """('airflow' | 'in-process' | 'none', runner). `auto` picks Airflow when its API
    connection is defined, else runs extracts in this process."""
    if mode == "none":
        return "none", None
    if mode == "airflow" or (
        mode == "auto" and os.environ.get(connections.env_name(API_CONNECTION))
    ):
        return "airflow", AirflowApi.from_connection()
    return "in-process", in_process(url)


@dataclass
class _Pending:
    streams: set[str] = field(default_factory=set)
    timer: threading.Timer | None = None
    running: bool = False


class Debouncer:
    """Collects streams per source; `delay_s` after the first event of a burst, runs once.

    Events during a run are kept and start one more run when it ends. `on_run` is told
    (source, run id, fired at) so the covered events can be marked.
    """

    def __init__(
        self,
        runner: Runner,
        delay_s: Callable[[str], float],
        on_run: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.runner = runner
        self.delay_s = delay_s
        self.on_run = on_run
        self.lock = threading.Lock()
        self.pending: dict[str, _Pending] = {}
        self.runs = 0
        self.failures = 0
        self.closed = False

    def notify(self, source: str, streams: set[str]) -> None:
        with self.lock:
            entry = self.pending.setdefault(source, _Pending())
            entry.streams |= streams
            if entry.timer is None and not entry.running and not self.closed:
                self._schedule(source, entry, self.delay_s(source))

    def _schedule(self, source: str, entry: _Pending, delay: float) -> None:
        entry.timer = threading.Timer(delay, self._fire, args=(source,))
        entry.timer.daemon = True
        entry.timer.start()

    def _fire(self, source: str) -> None:
        with self.lock:
            entry = self.pending[source]
            entry.timer = None
            streams, entry.streams = sorted(entry.streams), set()
            entry.running = True
        fired_at = time.time()
        retry = False
        try:
            run_id = self.runner(source, streams)
            self.runs += 1
            if self.on_run is not None:
                self.on_run(source, run_id, fired_at)
            log.info("webhooks: ran %s extract %s for %s", source, run_id, ", ".join(streams))
        except Busy:
            retry = True
            log.info("webhooks: %s is being extracted already; trying again shortly", source)
        except Exception as error:  # noqa: BLE001 - the nightly poll catches up; keep serving
            self.failures += 1
            log.warning("webhooks: the %s extract failed: %s", source, error)
        finally:
            with self.lock:
                entry.running = False
                if retry:
                    entry.streams |= set(streams)
                if entry.streams and not self.closed:
                    delay = BUSY_RETRY_S if retry else self.delay_s(source)
                    self._schedule(source, entry, delay)

    def idle(self) -> bool:
        with self.lock:
            return all(
                not e.running and e.timer is None and not e.streams for e in self.pending.values()
            )

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for entry in self.pending.values():
                if entry.timer is not None:
                    entry.timer.cancel()
                    entry.timer = None


def streams_for(event_type: str, mapping: dict[str, str], all_streams: list[str]) -> set[str]:
    """The stream an event type names (`invoice.paid` -> invoices), else every stream."""
    prefix = event_type.split(".", 1)[0]
    if prefix in mapping:
        return {mapping[prefix]}
    return set(all_streams)
