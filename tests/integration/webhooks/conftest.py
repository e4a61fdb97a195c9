"""A receiver app over the test warehouse, with billing's webhook secret in its connection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from tieout.config import Source, load_config
from tieout.webhooks import receive
from tieout.webhooks.verify import stripe_header

SECRET = "whsec_test_" + "c3" * 12


@dataclass
class Runs:
    """Records the extract runs the debouncer asks for (the receiver tests check the trigger,
    not the extract; the end-to-end tests run the real extract)."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def __call__(self, source: str, streams: list[str]) -> str:
        self.calls.append((source, streams))
        return f"test-run-{len(self.calls)}"


def billing_source(debounce_s: float = 0.2) -> Source:
    source = load_config().sources["billing"]
    assert source.webhook is not None
    return source.model_copy(
        update={"webhook": source.webhook.model_copy(update={"debounce_s": debounce_s})}
    )


def event(event_id: str, kind: str = "invoice.updated", object_id: str = "in_1") -> bytes:
    document = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": object_id}},
    }
    return json.dumps(document).encode()


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {
        "Stripe-Signature": stripe_header(secret, body, stamp),
        "Content-Type": "application/json",
    }


@pytest.fixture
def billing_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TIEOUT_BILLING", f"http://127.0.0.1:1?secret_key=sk&webhook_secret={SECRET}"
    )
    return SECRET


@pytest.fixture
def receiver(
    warehouse_url: str, conn, billing_secret: str
) -> Iterator[Callable[..., tuple[TestClient, Runs]]]:  # type: ignore[no-untyped-def]
    conn.execute("delete from ops.webhook_events")
    clients: list[TestClient] = []

    def make(debounce_s: float = 0.2) -> tuple[TestClient, Runs]:
        runs = Runs()
        app = receive.create_app(
            {"billing": billing_source(debounce_s)}, warehouse_url, runner=runs, mode="test"
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client, runs

    yield make
    for client in clients:
        client.__exit__(None, None, None)
