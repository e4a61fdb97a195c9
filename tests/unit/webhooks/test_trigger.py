"""The debouncer turns a burst into one run and never runs a source twice at once; the Airflow
REST trigger logs in for a JWT, starts tieout_extract_<source> with the streams, renews on 401."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tieout.webhooks import trigger


def wait(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_burst_is_one_run() -> None:
    calls: list[tuple[str, list[str]]] = []
    debouncer = trigger.Debouncer(lambda s, st: calls.append((s, st)) or "r", lambda s: 0.2)
    for n in range(50):
        debouncer.notify("billing", {"invoices" if n % 2 else "customers"})
    wait(lambda: calls)
    time.sleep(0.4)
    assert calls == [("billing", ["customers", "invoices"])]
    assert debouncer.idle()


def test_events_during_a_run_start_one_more_run_after_it() -> None:
    calls: list[list[str]] = []
    running = threading.Event()
    release = threading.Event()
    active = []

    def slow(source: str, streams: list[str]) -> str:
        active.append(1)
        assert len(active) == 1, "two runs of one source at once"
        calls.append(streams)
        running.set()
        release.wait(5)
        active.pop()
        return "r"

    debouncer = trigger.Debouncer(slow, lambda s: 0.05)
    debouncer.notify("billing", {"invoices"})
    running.wait(5)
    for _ in range(10):
        debouncer.notify("billing", {"payments"})
    time.sleep(0.2)
    assert calls == [["invoices"]]
    release.set()
    wait(lambda: len(calls) == 2)
    wait(debouncer.idle)
    assert calls == [["invoices"], ["payments"]]


def test_busy_is_retried_and_failures_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trigger, "BUSY_RETRY_S", 0.05)
    answers = [trigger.Busy("nightly"), RuntimeError("down"), "ok"]
    calls: list[list[str]] = []

    def runner(source: str, streams: list[str]) -> str:
        calls.append(streams)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    debouncer = trigger.Debouncer(runner, lambda s: 0.01)
    debouncer.notify("billing", {"invoices"})
    wait(lambda: len(calls) == 2)
    assert debouncer.failures == 1 and calls == [["invoices"], ["invoices"]]


def test_streams_for() -> None:
    mapping = {"invoice": "invoices"}
    assert trigger.streams_for("invoice.paid", mapping, ["a", "invoices"]) == {"invoices"}
    assert trigger.streams_for("refund.created", mapping, ["a", "invoices"]) == {"a", "invoices"}


class FakeAirflow(ThreadingHTTPServer):
    """Airflow 3's /auth/token and dagRuns endpoints, as far as the trigger uses them."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict]] = []
        self.tokens = 0
        self.expire_next = False
        super().__init__(("127.0.0.1", 0), AirflowHandler)


class AirflowHandler(BaseHTTPRequestHandler):
    server: FakeAirflow

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/token":
            if body != {"username": "hooks", "password": "pw"}:
                return self.answer(401, {"detail": "bad login"})
            self.server.tokens += 1
            return self.answer(201, {"access_token": f"jwt{self.server.tokens}"})
        expected = f"Bearer jwt{self.server.tokens}"
        if self.server.expire_next or self.headers.get("Authorization") != expected:
            self.server.expire_next = False
            return self.answer(401, {"detail": "expired"})
        self.server.runs.append((self.path, body))
        return self.answer(200, {"dag_run_id": body["dag_run_id"]})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    fake = FakeAirflow()
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_AIRFLOW_API", f"http://hooks:pw@127.0.0.1:{fake.server_address[1]}"
    )
    yield fake
    fake.shutdown()
    fake.server_close()


def test_airflow_rest_trigger_starts_the_extract_dag(airflow) -> None:  # type: ignore[no-untyped-def]
    mode, runner = trigger.choose_runner("auto")
    assert mode == "airflow" and runner is not None
    run_id = runner("billing", ["invoices"])
    path, body = airflow.runs[0]
    assert path == "/api/v2/dags/tieout_extract_billing/dagRuns"
    assert body == {"dag_run_id": run_id, "logical_date": None, "conf": {"streams": ["invoices"]}}
    airflow.expire_next = True
    runner("billing", ["payments"])
    assert airflow.tokens == 2 and len(airflow.runs) == 2
    assert "pw" not in repr(runner)


def test_airflow_refusing_the_login_is_an_error_without_the_password(airflow, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_AIRFLOW_API",
        f"http://hooks:wrong-secret@127.0.0.1:{airflow.server_address[1]}",
    )
    _, runner = trigger.choose_runner("airflow")
    assert runner is not None
    with pytest.raises(RuntimeError) as caught:
        runner("billing", ["invoices"])
    assert "401" in str(caught.value) and "wrong-secret" not in str(caught.value)


def test_without_airflow_auto_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TIEOUT_AIRFLOW_API", raising=False)
    assert trigger.choose_runner("auto")[0] == "in-process"
    assert trigger.choose_runner("none") == ("none", None)
