"""End to end over real HTTP: a billing change reaches raw through the webhook path, and with
the receiver down (or every event lost) the nightly poll still loads everything they named."""

from __future__ import annotations

import time
import uuid

import pytest

from tieout.config import load_config
from tieout.extract.run import extract_stream
from tieout.webhooks import receive, trigger
from tieout_sandbox import server

from .conftest import Served, free_receiver_port


def raw_notes(conn, ids: list[str]) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """The newest raw version of each invoice's metadata.note."""
    found = conn.execute(
        "select distinct on (_pk) _pk, _record -> 'metadata' ->> 'note' from raw.billing__invoices"
        " where _pk = any(%s) order by _pk, _seq desc",
        (ids,),
    ).fetchall()
    return dict(found)


def change_invoices(company, count: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    invoices = company.billing.get("/v1/invoices", params={"limit": count}).json()["data"]
    wanted = {}
    for invoice in invoices:
        note = uuid.uuid4().hex[:10]
        answer = company.billing.post(
            f"/v1/invoices/{invoice['id']}", data={"metadata[note]": note}
        )
        assert answer.status_code == 200
        wanted[invoice["id"]] = note
    return wanted


@pytest.fixture
def polled_once(company, conn):  # type: ignore[no-untyped-def]
    """Billing invoices polled once, so the webhook runs are incremental like in production."""
    conn.execute("delete from ops.webhook_events")
    extract_stream("billing", "invoices", f"poll-{uuid.uuid4().hex[:6]}")
    return company


def test_a_change_reaches_raw_through_the_webhook(polled_once, conn) -> None:  # type: ignore[no-untyped-def]
    company = polled_once
    runner = trigger.in_process()
    app = receive.create_app(load_config().sources, runner=runner, mode="in-process")
    served = Served(app, free_receiver_port())
    server.set_webhook(f"{served.url}/webhooks/billing", company.directory)
    try:
        wanted = change_invoices(company, 8)
        deadline = time.monotonic() + 60
        while raw_notes(conn, list(wanted)) != wanted:
            assert time.monotonic() < deadline, "the changes did not reach raw"
            time.sleep(0.2)
    finally:
        server.set_webhook(None, company.directory)
        served.stop()
    accepted = conn.execute(
        "select count(*), count(distinct object_id), count(trigger_run)"
        " from ops.webhook_events where status = 'accepted' and event_type = 'invoice.updated'"
    ).fetchone()
    assert accepted == (8, 8, 8)
    runs = conn.execute(
        "select count(distinct trigger_run) from ops.webhook_events where status = 'accepted'"
    ).fetchone()[0]
    assert 1 <= runs < 8, "a burst of changes must be debounced into few runs"


@pytest.mark.parametrize("outage", ["receiver_down", "webhook_loss"])
def test_lost_webhooks_are_caught_by_the_nightly_poll(polled_once, conn, outage: str) -> None:  # type: ignore[no-untyped-def]
    company = polled_once
    if outage == "receiver_down":
        # events go to a port where nothing listens: every send fails, nothing is recorded
        server.set_webhook(
            f"http://127.0.0.1:{free_receiver_port()}/webhooks/billing", company.directory
        )
    else:
        server.set_faults("billing", company.directory, webhook_loss=1.0)
    try:
        wanted = change_invoices(company, 12)
        time.sleep(1.0)
    finally:
        server.set_webhook(None, company.directory)
        server.clear_faults("billing", company.directory)
    assert conn.execute("select count(*) from ops.webhook_events").fetchone()[0] == 0
    assert raw_notes(conn, list(wanted)) != wanted
    extract_stream("billing", "invoices", f"nightly-{uuid.uuid4().hex[:6]}")
    assert raw_notes(conn, list(wanted)) == wanted
