"""A receiver app over the test warehouse, with billing's webhook secret in its connection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path

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


# ---------------------------------------------------------------- the webhook path, end to end

RECEIVER_PORTS = range(9190, 9200)


def free_receiver_port() -> int:
    import socket

    for port in RECEIVER_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 9190-9199 for the receiver")


class Served:
    """A receiver app served by uvicorn on 127.0.0.1 in a thread (real HTTP)."""

    def __init__(self, app, port: int) -> None:  # type: ignore[no-untyped-def]
        import threading

        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Company:
    directory: object
    billing: object  # an httpx client with the billing secret key


@pytest.fixture(scope="module")
def company(
    tmp_path_factory: pytest.TempPathFactory,
    warehouse_url: str,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
    sandbox_env: Callable[[Path, Path], dict[str, str]],
) -> Iterator[Company]:
    """The sandbox (scale 0.05) on free ports, its connections in the environment."""
    import shutil

    import httpx
    import yaml

    from tieout.paths import config_dir
    from tieout_sandbox import SYSTEMS, credentials, generate, server

    directory = tmp_path_factory.mktemp("webhook-sandbox")
    generate.seed(directory, scale=0.05, seed_value=5)
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    services = server.up(directory, ports=ports)
    config = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(config_dir(), config)
    billing_yml = config / "sources" / "billing.yml"
    data = yaml.safe_load(billing_yml.read_text())
    data["rate_limit"].update(requests_per_second=200, burst=50)
    data["webhook"]["debounce_s"] = 0.5
    billing_yml.write_text(yaml.safe_dump(data, sort_keys=False))
    env = sandbox_env(directory, config)
    keys = credentials.load_credentials(directory)
    client = httpx.Client(
        base_url=services["billing"]["url"],
        headers={"Authorization": f"Bearer {keys['billing_secret_key']}"},
        timeout=30,
    )
    try:
        with scoped_env(env):
            yield Company(directory, client)
    finally:
        client.close()
        server.down(directory)
