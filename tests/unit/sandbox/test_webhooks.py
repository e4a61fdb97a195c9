"""Billing's webhooks: every applied write sends one signed event from a background thread;
the fault knobs lose, duplicate, delay and mis-sign events; a refused write sends nothing."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tieout.config import Webhook
from tieout.webhooks import verify
from tieout_sandbox import credentials, server

STRIPE = Webhook(scheme="stripe")


class Capture(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.delay_s = 0.0
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/billing"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[bytes, dict[str, str]]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)


class Handler(BaseHTTPRequestHandler):
    server: Capture

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay_s)
        self.server.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hooked(faults_off):  # type: ignore[no-untyped-def]
    capture = Capture()
    thread = threading.Thread(target=capture.serve_forever, daemon=True)
    thread.start()
    server.set_webhook(capture.url, faults_off.directory)
    try:
        yield faults_off, capture
    finally:
        server.set_webhook(None, faults_off.directory)
        capture.shutdown()
        capture.server_close()


def secret(sandbox) -> str:  # type: ignore[no-untyped-def]
    return credentials.load_credentials(sandbox.directory)["billing_webhook_secret"]


def an_invoice(billing) -> dict:  # type: ignore[no-untyped-def]
    return billing.get("/v1/invoices", params={"limit": 1}).json()["data"][0]


def test_each_write_sends_one_signed_event(hooked) -> None:  # type: ignore[no-untyped-def]
    sandbox, capture = hooked
    billing = sandbox.clients()["billing"]
    invoice = an_invoice(billing)
    updated = billing.post(f"/v1/invoices/{invoice['id']}", data={"metadata[note]": "x"})
    assert updated.status_code == 200
    created = billing.post(
        "/v1/invoices",
        data={
            "customer": invoice["customer"],
            "amount_due": 1234,
            "currency": "eur",
            "due_date": 1_800_000_000,
        },
    )
    assert created.status_code == 200, created.text
    paid = billing.post(f"/v1/invoices/{created.json()['id']}/pay")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    refused = billing.post(f"/v1/invoices/{created.json()['id']}/pay")
    assert refused.status_code == 400
    events = capture.wait_for(3)
    time.sleep(0.3)
    assert len(capture.received) == 3, "a refused write must send nothing"
    checked = [verify.verify(STRIPE, [secret(sandbox)], body, headers) for body, headers in events]
    assert [e.event_type for e in checked] == ["invoice.updated", "invoice.created", "invoice.paid"]
    new_id = created.json()["id"]
    assert [e.object_id for e in checked] == [invoice["id"], new_id, new_id]
    assert json.loads(events[2][0])["data"]["object"]["status"] == "paid"


def test_sending_does_not_block_the_request(hooked) -> None:  # type: ignore[no-untyped-def]
    """The receiver takes 2 s per event; the write still answers at once and the event arrives."""
    sandbox, capture = hooked
    capture.delay_s = 2.0
    billing = sandbox.clients()["billing"]
    invoice = an_invoice(billing)
    answer = billing.post(f"/v1/invoices/{invoice['id']}", data={"metadata[note]": "slow"})
    assert answer.status_code == 200
    assert capture.received == []  # answered while the event is still in flight
    assert len(capture.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"webhook_loss": 1.0}, {"count": 0}),
        ({"webhook_duplicate": 1.0}, {"count": 2, "same": True}),
        ({"webhook_bad_signature": 1.0}, {"count": 1, "reason": "bad_signature"}),
        ({"webhook_delay_rate": 1.0, "webhook_delay_ms": 800}, {"count": 1, "late": True}),
    ],
    ids=["loss", "duplicate", "bad_signature", "delay"],
)
def test_webhook_fault_knobs(hooked, knobs: dict, expected: dict) -> None:  # type: ignore[no-untyped-def]
    sandbox, capture = hooked
    server.set_faults("billing", sandbox.directory, **knobs)
    billing = sandbox.clients()["billing"]
    invoice = an_invoice(billing)
    assert (
        billing.post(f"/v1/invoices/{invoice['id']}", data={"metadata[k]": "v"}).status_code == 200
    )
    time.sleep(0.3)
    if expected.get("late"):
        assert capture.received == [], "a delayed event must not arrive at once"
    events = capture.wait_for(expected["count"], timeout=5) if expected["count"] else []
    time.sleep(0.5)
    assert len(capture.received) == expected["count"]
    if expected.get("same"):
        assert events[0][0] == events[1][0]
    if "reason" in expected:
        with pytest.raises(verify.Rejected) as caught:
            verify.verify(STRIPE, [secret(sandbox)], *events[0])
        assert caught.value.reason == expected["reason"]
    elif events:
        assert verify.verify(STRIPE, [secret(sandbox)], *events[0])


def test_connection_carries_the_webhook_secret(faults_off) -> None:  # type: ignore[no-untyped-def]
    from tieout.http import connections

    uri = credentials.sandbox_connections(faults_off.directory)["billing"]
    conn = connections.parse("tieout_billing", uri)
    assert conn.extra["webhook_secret"] == secret(faults_off)


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"webhook_loss": 1.5}, "webhook_loss must be a number between 0 and 1, got 1.5"),
        ({"webhook_duplicate": -0.1}, "webhook_duplicate must be a number between 0 and 1"),
        ({"webhook_bad_signature": "often"}, "webhook_bad_signature must be a number"),
        (
            {"webhook_delay_ms": -5},
            "webhook_delay_ms must be a whole number between 0 and 600000, got -5",
        ),
    ],
)
def test_webhook_knobs_are_checked(knobs: dict, message: str) -> None:
    from tieout_sandbox import faults

    with pytest.raises(ValueError, match=message):
        faults.knobs_from_dict("billing", knobs)
