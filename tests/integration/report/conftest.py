"""A small warehouse of its own for the report tests: canonical invoices, payments and orders, a
by-system invoice model with known differences, one reconciled and reported run, and a webhook
that records what the notifier posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
import pytest

from tieout.config import AlertNotify, Alerts, load_config

SCHEMA = """
create table canonical.invoices (
    invoice_id text, erp_id text, billing_id text, customer_id text, amount numeric,
    currency text, status text, order_id text
);
create table intermediate.int_invoices_by_system (
    invoice_id text, system text, system_key text, duplicate_rank integer, customer_id text,
    amount numeric, currency text, status text
);
create table canonical.payments (
    payment_id text, billing_id text, invoice_id text, amount numeric, currency text, status text
);
create table canonical.orders (
    order_id text, shop_id text, customer_id text, amount numeric, currency text
);
insert into canonical.invoices values
    ('i1', 'INV-1', 'in_1', 'cA', 100, 'EUR', 'paid', 'o1'),
    ('i2', 'INV-2', 'in_2', 'cA', 200, 'EUR', 'paid', 'o2'),
    ('i3', 'INV-3', null, 'cB', 300, 'EUR', 'open', null),
    ('i4', 'INV-4', 'in_4', 'cC', 50, 'GBP', 'open', 'o4'),
    ('i5', 'INV-5', 'in_5', 'cB', 10, 'EUR', 'void', 'o5');
insert into intermediate.int_invoices_by_system values
    ('i1', 'erp', 'INV-1', 1, 'cA', 100, 'EUR', 'paid'),
    ('i1', 'billing', 'in_1', 1, 'cA', 100.00, 'eur', 'paid'),
    ('i2', 'erp', 'INV-2', 1, 'cA', 200, 'EUR', 'open'),
    ('i2', 'billing', 'in_2', 1, 'cA', 201.00, 'EUR', 'paid'),
    ('i3', 'erp', 'INV-3', 1, 'cB', 300, 'EUR', 'open'),
    ('i4', 'erp', 'INV-4', 1, 'cC', 50, 'GBP', 'open'),
    ('i4', 'billing', 'in_4', 1, 'cC', 50, 'GBP', 'open'),
    ('i5', 'erp', 'INV-5', 1, 'cB', 10, 'EUR', 'void'),
    ('i5', 'billing', 'in_5', 1, 'cB', 10, 'EUR', 'void');
insert into canonical.payments values
    ('p1', 'py_1', 'i1', 100, 'EUR', 'succeeded'),
    ('p2', 'py_2', 'i2', 150, 'EUR', 'succeeded'),
    ('p3', 'py_3', 'i3', 300, 'EUR', 'failed'),
    ('p4', 'py_4', 'i4', 60, 'GBP', 'succeeded'),
    ('p5', 'py_5', null, 25, 'EUR', 'succeeded');
insert into canonical.orders values
    ('o1', '5001', 'cA', 100, 'EUR'),
    ('o2', '5002', 'cA', 200, 'EUR'),
    ('o3', '5003', 'cB', 999, 'EUR'),
    ('o4', '5004', 'cC', 50, 'GBP'),
    ('o5', '5005', 'cB', 70, 'EUR');
"""


class Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        Webhook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="package")
def webhook(
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
) -> Iterator[list[dict[str, Any]]]:
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        with scoped_env({"AIRFLOW_CONN_TIEOUT_TEST_WEBHOOK": hook}):
            yield Webhook.received
    finally:
        server.shutdown()


@pytest.fixture(scope="package")
def report_db(
    new_warehouse: Callable[[str], ContextManager[str]],
    tmp_path_factory: pytest.TempPathFactory,
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
) -> Iterator[str]:
    """A migrated database of its own, with TIEOUT_DATABASE_URL and the state dir pointing at it."""
    with new_warehouse("tieout_report") as url:
        with psycopg.connect(url) as conn:
            conn.execute(SCHEMA)  # type: ignore[arg-type]
        state = str(tmp_path_factory.mktemp("report-state"))
        with scoped_env({"TIEOUT_DATABASE_URL": url, "TIEOUT_STATE_DIR": state}):
            yield url


ALERTS = Alerts(
    money_at_stake={"EUR": 100.0},
    new_findings_share=0.5,
    min_new_findings=1,
    notify=AlertNotify(log=True, webhook_connection_id="tieout_test_webhook"),
)


def reconcile_and_report(url: str, run_id: str) -> dict[str, Any]:
    from tieout.reconcile.run import reconcile
    from tieout.report.build import report

    entities = load_config().entities
    figures = reconcile(run_id, url=url, specs={"invoice": entities["invoice"]}, alerts=ALERTS)
    paths = report(run_id, url=url)
    return {**figures, "paths": paths}


@pytest.fixture(scope="package")
def reported_run(report_db: str, webhook: list[dict[str, Any]]) -> dict[str, Any]:
    return reconcile_and_report(report_db, "report-run-1")
