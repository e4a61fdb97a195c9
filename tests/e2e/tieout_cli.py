"""Running tieout as a person does, for the end-to-end tests: the CLI in a subprocess with its
output kept in a log, free ports for the services it starts, and `tieout ui` until it answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

Pipeline = tuple[dict[str, str], Path, str, Path]  # env, log, warehouse URL, state folder


def tieout(env: dict[str, str], log: Path, *args: str, timeout: int = 1800) -> str:
    """Run `tieout <args>`, append the command and its output to `log`; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    with log.open("a") as handle:
        handle.write(f"$ tieout {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    assert result.returncode == 0, f"tieout {' '.join(args)}:\n{result.stderr[-4000:]}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_base_port(first: int) -> int:
    """The first of four consecutive free ports (a sandbox's), searched from `first` on in
    steps of ten; modules search from different `first`s so they do not race for the same."""
    for base in range(first, first + 1000, 10):
        try:
            for offset in range(4):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no four free ports for the sandbox")


@contextlib.contextmanager
def airflow_ui(env: dict[str, str], log_path: Path, timeout_s: float) -> Iterator[str]:
    """`tieout ui` on a free port until its health endpoint answers (fails with the log's tail
    if it does not within `timeout_s`); yields its base URL and stops the whole process group
    afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tieout.cli", "ui", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            time.sleep(2)
        else:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"tieout ui not healthy within {timeout_s:.0f} s:\n{tail}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group may have exited
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
