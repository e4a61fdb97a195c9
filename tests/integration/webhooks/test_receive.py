"""The receiver: accepted once, refused with a reason (forged, expired, replayed, malformed,
no header, unknown source), counted, logged without body or secret, and nothing triggered."""

from __future__ import annotations

import logging
import time

import pytest

from .conftest import SECRET, event, signed


def rows(conn) -> list[tuple]:  # type: ignore[no-untyped-def]
    return conn.execute(
        "select event_id, event_type, object_id, status, reason from ops.webhook_events order by id"
    ).fetchall()


def wait(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_accepted_event_is_recorded_once_and_triggers_its_stream(receiver, conn) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver()
    body = event("evt_a1", "invoice.paid", "in_7")
    answer = client.post("/webhooks/billing", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    assert rows(conn) == [("evt_a1", "invoice.paid", "in_7", "accepted", None)]
    wait(lambda: runs.calls)
    assert runs.calls == [("billing", ["invoices"])]
    wait(
        lambda: (
            conn.execute(
                "select trigger_run from ops.webhook_events where event_id = 'evt_a1'"
            ).fetchone()[0]
            == "test-run-1"
        )
    )


def test_a_burst_is_one_run(receiver) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver(debounce_s=1.0)
    for n in range(30):
        kind = "invoice.updated" if n % 2 else "customer.updated"
        body = event(f"evt_burst_{n}", kind)
        assert (
            client.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 200
        )
    wait(lambda: runs.calls)
    time.sleep(1.5)
    assert runs.calls == [("billing", ["customers", "invoices"])]


def test_an_unknown_event_type_extracts_every_stream(receiver) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver()
    body = event("evt_u1", "balance.available")
    assert client.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 200
    wait(lambda: runs.calls)
    assert runs.calls == [("billing", ["customers", "invoices", "payments"])]


@pytest.mark.parametrize(
    ("case", "make", "status", "reason"),
    [
        ("forged", lambda b: (b, signed(b, secret="whsec_" + "f0" * 16)), 401, "bad_signature"),
        ("tampered", lambda b: (b.replace(b"in_1", b"in_2"), signed(b)), 401, "bad_signature"),
        ("expired", lambda b: (b, signed(b, at=int(time.time()) - 400)), 400, "expired"),
        ("future", lambda b: (b, signed(b, at=int(time.time()) + 400)), 400, "future"),
        ("no header", lambda b: (b, {"Content-Type": "application/json"}), 400, "missing_header"),
        (
            "malformed with a valid signature",
            lambda b: (b"{not json", signed(b"{not json")),
            400,
            "malformed",
        ),
        (
            "no event id with a valid signature",
            lambda b: (b'{"type": "invoice.paid"}', signed(b'{"type": "invoice.paid"}')),
            400,
            "malformed",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_refused_is_recorded_counted_and_triggers_nothing(  # type: ignore[no-untyped-def]
    receiver, conn, caplog, case, make, status, reason
) -> None:
    client, runs = receiver()
    raw, headers = make(event("evt_bad"))
    with caplog.at_level(logging.INFO):
        answer = client.post("/webhooks/billing", content=raw, headers=headers)
    assert answer.status_code == status, case
    assert answer.json()["error"] == reason
    assert [(r[3], r[4]) for r in rows(conn)] == [("rejected", reason)]
    logged = caplog.text
    assert reason in logged
    assert SECRET not in logged and raw.decode(errors="replace") not in logged
    assert headers.get("Stripe-Signature", "~") not in logged
    metrics = client.get("/metrics").text
    assert (
        f'tieout_webhook_events_rejected_total{{source="billing",reason="{reason}"}} 1' in metrics
    )
    time.sleep(0.4)
    assert runs.calls == []
    # the receiver keeps serving
    body = event("evt_after")
    assert client.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 200


def test_replayed_event_id_is_refused_and_not_triggered_twice(receiver, conn) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver()
    body = event("evt_r1")
    assert client.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 200
    wait(lambda: runs.calls)
    again = client.post("/webhooks/billing", content=body, headers=signed(body))
    assert again.status_code == 400 and again.json()["error"] == "replayed"
    time.sleep(0.5)
    assert len(runs.calls) == 1
    assert [(r[0], r[3], r[4]) for r in rows(conn)] == [
        ("evt_r1", "accepted", None),
        ("evt_r1", "rejected", "replayed"),
    ]
    health = client.get("/healthz").json()
    assert health["accepted"] == 1 and health["rejected"] == {"billing.replayed": 1}


def test_replay_is_refused_across_receiver_restarts(receiver, conn) -> None:  # type: ignore[no-untyped-def]
    first, _ = receiver()
    body = event("evt_restart")
    assert first.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 200
    second, runs = receiver()
    assert second.post("/webhooks/billing", content=body, headers=signed(body)).status_code == 400
    assert runs.calls == []


def test_unknown_source_is_404(receiver) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver()
    body = event("evt_x")
    answer = client.post("/webhooks/erp", content=body, headers=signed(body))
    assert answer.status_code == 404
    assert 'reason="unknown_source"' in client.get("/metrics").text


def test_no_secret_in_the_connection_refuses_everything(receiver, monkeypatch, conn) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_BILLING", "http://127.0.0.1:1?secret_key=sk")
    client, runs = receiver()
    body = event("evt_nosecret")
    answer = client.post("/webhooks/billing", content=body, headers=signed(body))
    assert answer.status_code == 401 and answer.json()["error"] == "no_secret"
    assert runs.calls == []


def test_a_repeat_inside_one_batch_is_a_replay(conn) -> None:  # type: ignore[no-untyped-def]
    from tieout.webhooks.receive import Recorder, Row
    from tieout.webhooks.verify import Event

    conn.execute("delete from ops.webhook_events")
    one = Event("evt_b1", "invoice.paid", "in_1", time.time())
    two = Event("evt_b2", "invoice.paid", "in_2", time.time())
    batch = [
        Row("billing", "accepted", event=one),
        Row("billing", "rejected", "bad_signature"),
        Row("billing", "accepted", event=one),
        Row("billing", "accepted", event=two),
    ]
    assert Recorder._write(conn, batch) == [True, False, False, True]
    assert [(r[0], r[3], r[4]) for r in rows(conn)] == [
        ("evt_b1", "accepted", None),
        ("evt_b2", "accepted", None),
        (None, "rejected", "bad_signature"),
        ("evt_b1", "rejected", "replayed"),
    ]


def test_a_body_over_one_mebibyte_is_refused_unread(receiver, conn) -> None:  # type: ignore[no-untyped-def]
    client, runs = receiver()
    body = b'{"id": "evt_big", "type": "invoice.paid", "pad": "' + b"x" * 1_100_000 + b'"}'
    answer = client.post("/webhooks/billing", content=body, headers=signed(body))
    assert answer.status_code == 413
    assert [(r[3], r[4]) for r in rows(conn)] == [("rejected", "malformed")]
    assert runs.calls == []
