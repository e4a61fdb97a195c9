"""With the warehouse unreachable an event is answered 503 (the sender retries), nothing is
triggered, and the receiver keeps answering."""

from __future__ import annotations

import json
import socket
import time

import pytest
from fastapi.testclient import TestClient

from tieout.config import load_config
from tieout.webhooks import receive
from tieout.webhooks.verify import stripe_header

SECRET = "whsec_down_" + "d4" * 12


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_warehouse_is_503_and_triggers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_BILLING", f"http://127.0.0.1:1?secret_key=sk&webhook_secret={SECRET}"
    )
    calls: list[str] = []
    url = f"postgresql://nobody@127.0.0.1:{closed_port()}/nowhere"
    app = receive.create_app(
        {"billing": load_config().sources["billing"]},
        url,
        runner=lambda source, streams: calls.append(source) or "r",
        mode="test",
    )
    body = json.dumps(
        {"id": "evt_d1", "type": "invoice.paid", "created": int(time.time())}
    ).encode()
    headers = {"Stripe-Signature": stripe_header(SECRET, body, int(time.time()))}
    with TestClient(app) as client:
        answer = client.post("/webhooks/billing", content=body, headers=headers)
        assert answer.status_code == 503
        assert client.get("/healthz").status_code == 200
        time.sleep(1.5)
    assert calls == []
