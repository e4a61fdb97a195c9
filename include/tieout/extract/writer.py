"""The writer process of one stream run: it hashes, COPY-encodes, looks up and commits the
batches the extract hands it, on a connection of its own.

Why a process: the extract's critical path is paging through the API, one request after the
other, and in one process every millisecond the loader holds the GIL delays the next
request (measured on shop.orders: a pure-Python thread 40% busy slowed paging by a third,
the same load in a process by a ninth). It is a plain subprocess (`python -m
tieout.extract.writer`), not multiprocessing, so it also starts inside Celery's daemonic
workers. It must never commit after its extract has died: Linux kills it with its parent,
and it checks its parent before every commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import queue
import select
import signal
import subprocess
import sys
import threading
from typing import IO, Any

import psycopg

from tieout.extract.load import (
    Batch,
    KeyFilter,
    Totals,
    flush,
    has_rows,
    loading_mode,
    prepare_session,
)


class LoadFailed(RuntimeError):
    """The writer could not commit a batch; the message names the cause."""


def _write(pipe: IO[bytes], item: Any) -> None:
    """One message: its length, then the pickle (unbuffered pipes may take part of a write)."""
    data = pickle.dumps(item, protocol=5)
    for part in (len(data).to_bytes(8, "big"), data):
        view = memoryview(part)
        while view:
            view = view[pipe.write(view) or 0 :]


def _read_exactly(pipe: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = pipe.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read(pipe: IO[bytes]) -> Any:
    """The next message, or EOFError when the other side is gone."""
    header = _read_exactly(pipe, 8)
    data = _read_exactly(pipe, int.from_bytes(header, "big")) if header else None
    if data is None:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - our own parent or child, on a private pipe


class Writer:
    """Commits batches in order in the writer process. At most `depth` batches are in flight;
    an error surfaces on the caller at the next submit or at close."""

    def __init__(self, url: str, source: str, stream: str, run_id: str, depth: int = 2) -> None:
        self.source, self.stream, self.depth = source, stream, depth
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tieout.extract.writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.inbox: IO[bytes] = self.process.stdout
        self.outbox: IO[bytes] = self.process.stdin
        self.in_flight = 0
        self.totals = Totals()
        self.error: str | None = None
        self.closed = False
        # the URL may hold a password: it goes over the pipe, never on a command line
        self._send((url, source, stream, run_id, os.getpid()))

    def _send(self, item: Any) -> None:
        try:
            _write(self.outbox, item)
        except (BrokenPipeError, OSError):
            self._gone()

    def _gone(self) -> None:
        code = self.process.wait(timeout=30)
        self.error = self.error or (
            f"the writer of {self.source}.{self.stream} exited unexpectedly (exit code {code})"
        )
        self.in_flight = 0

    def _receive(self) -> None:
        try:
            kind, value = _read(self.inbox)
        except EOFError:
            self._gone()
            return
        if kind == "error":
            self.error = value
            self.in_flight = 0
            return
        rows, unchanged, quarantined = value
        self.totals.rows += rows
        self.totals.unchanged += unchanged
        self.totals.quarantined += quarantined
        self.in_flight -= 1

    def _check(self) -> None:
        if self.error is not None:
            raise LoadFailed(self.error)

    def submit(self, batch: Batch, update: dict[str, Any], counters: dict[str, Any]) -> None:
        while self.error is None and self.in_flight and select.select([self.inbox], [], [], 0)[0]:
            self._receive()
        while self.error is None and self.in_flight >= self.depth:
            self._receive()
        self._check()
        self._send((batch.staged, update, counters))
        self.in_flight += 1

    def close(self) -> Totals:
        """Wait for every submitted batch to commit and the writer to exit; raise the first
        error, if any."""
        if not self.closed:
            self.closed = True
            while self.error is None and self.in_flight > 0:
                self._receive()
            if self.error is None:
                self._send(None)
            with contextlib.suppress(OSError):
                self.outbox.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.inbox.close()
        self._check()
        return self.totals


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # the parent is already gone


def main() -> None:
    """The writer process: one connection, one transaction per batch, acks in order. A thread
    receives and encodes the next batch while PostgreSQL works on this one."""
    inbox = os.fdopen(0, "rb", buffering=0)
    outbox = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # a stray print goes to stderr, never into the acks
    url, source, stream, run_id, parent = _read(inbox)
    _die_with_parent(parent)
    with loading_mode():
        _write_batches(inbox, outbox, url, source, stream, run_id, parent)


def _write_batches(
    inbox: IO[bytes],
    outbox: IO[bytes],
    url: str,
    source: str,
    stream: str,
    run_id: str,
    parent: int,
) -> None:
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="tieout-writer")
        prepare_session(conn)
        known = None if has_rows(conn, source, stream) else KeyFilter()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        _write(outbox, ("error", f"{type(exc).__name__}: {exc}"))
        return
    encoded: queue.Queue[Any] = queue.Queue(maxsize=1)

    def receive() -> None:
        while True:
            try:
                item = _read(inbox)
            except EOFError:
                item = None  # the parent closed its end: nothing more to write
            if item is None:
                encoded.put(None)
                return
            staged, update, counters = item
            encoded.put((staged, staged.encoded(), update, counters))

    threading.Thread(target=receive, name="tieout-writer-receive", daemon=True).start()
    with conn:
        while (item := encoded.get()) is not None:
            staged, rows, update, counters = item
            if os.getppid() != parent:
                return  # the extract died: its last batch must not commit after a rerun began
            try:
                written = flush(conn, source, stream, run_id, staged, update, counters, known, rows)
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                _write(outbox, ("error", f"{type(exc).__name__}: {exc}"))
                return
            _write(outbox, ("ok", (written.rows, written.unchanged, written.quarantined)))


if __name__ == "__main__":
    main()
