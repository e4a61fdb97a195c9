"""A day of realistic change in a seeded sandbox: new customers and orders, payments, shipments,
customer updates, and a little new divergence, each recorded in the ground truth.

It must never touch a record that already carries injected divergence: the truth would go stale.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tieout_sandbox import SYSTEMS, clock, datadir, erp, generate, storage, vocabulary

MISSED_SYNC_RATE = 0.05


def dirty_keys(truth_folder: Path) -> set[str]:
    """Every id named by a divergence or balance break so far, as strings."""
    found: set[str] = set()
    for name in ("divergences.jsonl", "balance_breaks.jsonl", "benign.jsonl"):
        path = truth_folder / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                collect_ids(json.loads(line), found)
    return found


def collect_ids(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in (
                "keys",
                "invoice",
                "order",
                "customer",
                "payment",
                "payments",
                "canonical",
                "crm",
                "erp",
                "billing",
                "shop",
            ):
                collect_ids(inner, found)
    elif isinstance(value, list):
        for inner in value:
            collect_ids(inner, found)
    elif value is not None:
        found.add(str(value))


# how long before a mutated day's start its new orders are placed
ORDER_WINDOW_MS = 2 * generate.HOUR_MS


def newest_update(connections: dict[str, sqlite3.Connection]) -> int:
    newest = 0
    for system, conn in connections.items():
        for table in storage.RESOURCES[system]:
            value = conn.execute(f"select max(updated_ms) from {table}").fetchone()[0]
            newest = max(newest, value or 0)
    return newest


class Stamps:
    """Strictly increasing update times from `start`: every change of the day gets its own ms."""

    def __init__(self, start: int) -> None:
        self.current = start

    def next(self) -> int:
        self.current += 1
        return self.current


def candidates(
    conn: sqlite3.Connection, table: str, where: str, rng: random.Random, limit: int = 2000
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Rows matching `where`, starting at a random point of the table and wrapping around."""
    top = conn.execute(f"select max(seq) from {table}").fetchone()[0] or 0
    start = rng.randrange(top + 1)
    for low, high in ((start, top + 1), (0, start)):
        rows = conn.execute(
            f"select pk, doc from {table} where seq >= ? and seq < ? and {where}"
            " order by seq limit ?",
            (low, high, limit),
        ).fetchall()
        for pk, doc in rows:
            yield pk, json.loads(doc)


def cents(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


# where each system keeps a record's update time, and how it writes it
STAMPS = {
    "crm": ("updatedAt", clock.crm_time),
    "erp": ("modified_at", clock.erp_time),
    "billing": ("updated", clock.billing_time),
    "shop": ("updated_at", clock.shop_time),
}


def save(
    conn: sqlite3.Connection,
    system: str,
    table: str,
    pk: Any,
    doc: dict[str, Any],
    stamps: Stamps,
) -> int:
    """Store a changed record under the next update time of the day; returns that time."""
    at = stamps.next()
    name, render = STAMPS[system]
    doc[name] = render(at)
    storage.put(conn, table, pk, doc, at)
    return at


def follows(sink: generate.Sink, rng: random.Random, **missed: Any) -> bool:
    """Whether a system follows a change made elsewhere; when it misses it (MISSED_SYNC_RATE),
    the divergence `missed` describes is recorded instead."""
    if rng.random() < MISSED_SYNC_RATE:
        sink.divergence(kind="value_mismatch", **missed)
        return False
    return True


def pay_invoices(
    company: generate.Company,
    sink: generate.Sink,
    connections: dict[str, sqlite3.Connection],
    rng: random.Random,
    stamps: Stamps,
    dirty: set[str],
    count: int,
) -> int:
    """Open billing invoices get paid: billing status, a payment, erp status, shop financial
    status."""
    billing_db, erp_db, shop_db = connections["billing"], connections["erp"], connections["shop"]
    paid = 0
    for billing_id, invoice in candidates(
        billing_db, "invoices", "json_extract(doc, '$.status') = 'open'", rng
    ):
        if paid >= count:
            break
        invoice_no = invoice["metadata"].get("erp_invoice_no")
        if invoice_no is None or billing_id in dirty or invoice_no in dirty:
            continue
        erp_found = storage.get(erp_db, "invoices", invoice_no)
        if erp_found is None or erp_found[1]["status"] != "OPEN":
            continue
        erp_invoice = erp_found[1]
        order = storage.get(erp_db, "sales_orders", erp_invoice["order_no"])
        if (
            order is None
            or order[1]["order_no"] in dirty
            or str(order[1]["shop_order_id"]) in dirty
        ):
            continue
        shop_order = storage.get(shop_db, "orders", order[1]["shop_order_id"])
        if shop_order is None or cents(erp_invoice["total_amount"]) != invoice["amount_due"]:
            continue
        invoice.update(status="paid", amount_paid=invoice["amount_due"])
        at = save(billing_db, "billing", "invoices", billing_id, invoice, stamps)
        generate.write_payment(
            company,
            sink,
            invoice["customer"],
            billing_id,
            invoice["amount_due"],
            erp_invoice["currency"],
            "succeeded",
            at,
        )
        if follows(
            sink,
            rng,
            entity="invoice",
            system="erp",
            field="status",
            keys={"canonical": invoice_no, "erp": invoice_no, "billing": billing_id},
            expected="paid",
            actual="open",
            actual_raw="OPEN",
            cause="payment_not_synced",
        ):
            erp_invoice["status"] = erp.INVOICE_STATUS_TO_ERP["paid"]
            save(erp_db, "erp", "invoices", invoice_no, erp_invoice, stamps)
        shop_doc = shop_order[1]
        if shop_doc["financial_status"] != "voided":
            shop_doc["financial_status"] = "paid"
            save(shop_db, "shop", "orders", shop_doc["id"], shop_doc, stamps)
        paid += 1
    return paid


def ship_orders(
    sink: generate.Sink,
    connections: dict[str, sqlite3.Connection],
    rng: random.Random,
    stamps: Stamps,
    dirty: set[str],
    count: int,
) -> int:
    """Open erp sales orders ship: erp status SHIPPED and the shop order fulfilled."""
    erp_db, shop_db = connections["erp"], connections["shop"]
    shipped = 0
    where = (
        "json_extract(doc, '$.status') = 'OPEN'"
        " and json_extract(doc, '$.shop_order_id') is not null"
    )
    for order_no, order in candidates(erp_db, "sales_orders", where, rng):
        if shipped >= count:
            break
        shop_id = order["shop_order_id"]
        if order_no in dirty or str(shop_id) in dirty:
            continue
        shop_found = storage.get(shop_db, "orders", shop_id)
        if (
            shop_found is None
            or shop_found[1]["fulfillment_status"] is not None
            or shop_found[1]["cancelled_at"]
        ):
            continue
        order["status"] = "SHIPPED"
        save(erp_db, "erp", "sales_orders", order_no, order, stamps)
        if follows(
            sink,
            rng,
            entity="order",
            system="shop",
            field="status",
            keys={"canonical": shop_id, "shop": shop_id, "erp": order_no},
            expected="shipped",
            actual="open",
            actual_raw="open",
            cause="fulfilment_not_synced",
        ):
            shop_doc = shop_found[1]
            shop_doc["fulfillment_status"] = "fulfilled"
            save(shop_db, "shop", "orders", shop_id, shop_doc, stamps)
        shipped += 1
    return shipped


CUSTOMER_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "crm": {
        "phone": ("properties", "phone"),
        "street": ("properties", "address"),
        "postcode": ("properties", "zip"),
        "city": ("properties", "city"),
    },
    "erp": {
        "phone": ("phone_no",),
        "street": ("street",),
        "postcode": ("postcode",),
        "city": ("city",),
    },
    "billing": {
        "phone": ("phone",),
        "street": ("address", "line1"),
        "postcode": ("address", "postal_code"),
        "city": ("address", "city"),
    },
    "shop": {
        "phone": ("phone",),
        "street": ("default_address", "address1"),
        "postcode": ("default_address", "zip"),
        "city": ("default_address", "city"),
    },
}
CUSTOMER_TABLE = {
    "crm": "contacts",
    "erp": "customers",
    "billing": "customers",
    "shop": "customers",
}


def set_field(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    old = node[path[-1]]
    node[path[-1]] = value
    return old


def draw_customer_change(
    rng: random.Random, erp_doc: dict[str, Any]
) -> tuple[str, str, dict[str, str]] | None:
    """(cause, system of truth, new values): a new phone (crm) or a move (erp); None when the
    drawn move keeps the postcode (no visible change)."""
    country = erp_doc["country_code"]
    if rng.random() < 0.5:
        phone = f"{vocabulary.PHONE_PREFIX[country]}{rng.randrange(10**8, 10**9)}"
        return "update_not_synced", "crm", {"phone": phone}
    city = rng.choice([c for c in vocabulary.CITIES[country] if c != erp_doc["city"]])
    changes = {
        "street": f"{rng.choice(vocabulary.STREETS[country])} {rng.randint(400, 599)}",
        "postcode": vocabulary.postcode(country, rng.randrange(10**6)),
        "city": city,
    }
    if changes["postcode"] == erp_doc["postcode"]:
        return None
    return "stale_address", "erp", changes


def customer_docs(
    connections: dict[str, sqlite3.Connection], ids: dict[str, Any]
) -> dict[str, dict[str, Any]] | None:
    """The customer's record in every system, or None if one of them has none."""
    docs = {}
    for system in SYSTEMS:
        found = storage.get(connections[system], CUSTOMER_TABLE[system], ids[system])
        if found is None:
            return None
        docs[system] = found[1]
    return docs


def update_customers(
    company: generate.Company,
    sink: generate.Sink,
    connections: dict[str, sqlite3.Connection],
    rng: random.Random,
    stamps: Stamps,
    dirty: set[str],
    count: int,
) -> int:
    """Clean customers change phone (truth: crm) or move (truth: erp); every system follows,
    except that now and then one system misses the update (recorded as divergence)."""
    rows = company.refs.execute(
        "select customer_no, crm_id, billing_id, shop_id from customers where clean = 1"
    ).fetchall()
    rng.shuffle(rows)
    changed = 0
    for customer_no, crm_id, billing_id, shop_id in rows:
        if changed >= count:
            break
        ids = {"erp": customer_no, "crm": crm_id, "billing": billing_id, "shop": shop_id}
        if any(str(value) in dirty for value in ids.values()):
            continue
        docs = customer_docs(connections, ids)
        if docs is None:
            continue
        change = draw_customer_change(rng, docs["erp"])
        if change is None:
            continue
        cause, truth_system, changes = change
        skipped = None
        if rng.random() < 0.1:
            skipped = rng.choice([s for s in SYSTEMS if s != truth_system])
        keys = {"canonical": customer_no, **ids}
        for system in SYSTEMS:
            doc = docs[system]
            if system == skipped:
                record_missed_update(sink, system, doc, changes, keys, cause)
                continue
            for name, value in changes.items():
                set_field(doc, CUSTOMER_PATHS[system][name], value)
            save(connections[system], system, CUSTOMER_TABLE[system], ids[system], doc, stamps)
        if skipped:
            company.refs.execute(
                "update customers set clean = 0 where customer_no = ?", (customer_no,)
            )
        changed += 1
    return changed


def record_missed_update(
    sink: generate.Sink,
    system: str,
    doc: dict[str, Any],
    changes: dict[str, str],
    keys: dict[str, Any],
    cause: str,
) -> None:
    """`system` kept its old values: one divergence per changed field."""
    for name, value in changes.items():
        node: Any = doc
        for part in CUSTOMER_PATHS[system][name]:
            node = node[part]
        sink.divergence(
            kind="value_mismatch",
            entity="customer",
            system=system,
            field=name,
            keys=keys,
            expected=value,
            actual=node,
            actual_raw=node,
            cause=cause,
        )


def mutate(directory: Path, days: int = 1) -> dict[str, Any]:
    """Apply `days` days of change to the sandbox in `directory` and extend its ground truth."""
    directory = directory.resolve()
    state = datadir.read_json(datadir.state_path(directory))
    company = generate.load_company(directory)
    connections = {
        system: storage.open_database(datadir.database_path(directory, system))
        for system in SYSTEMS
    }
    summary: dict[str, int] = {
        "customers": 0,
        "orders": 0,
        "payments": 0,
        "shipments": 0,
        "customer_updates": 0,
    }
    try:
        for _ in range(days):
            day = state["days_mutated"] + 1
            for name, value in mutate_day(directory, company, connections, day).items():
                summary[name] += value
            state.update(
                days_mutated=day,
                counters=asdict(company.counters),
                entities=asdict(company.entities),
                no_orders=sorted(company.no_orders),
            )
            datadir.write_json(datadir.state_path(directory), state)
    finally:
        for conn in connections.values():
            if conn.in_transaction:
                conn.execute("rollback")
            conn.close()
        company.refs.close()
    generate.assemble_ground_truth(directory, state)
    return {"days": days, "days_mutated": state["days_mutated"], **summary}


def mutate_day(
    directory: Path,
    company: generate.Company,
    connections: dict[str, sqlite3.Connection],
    day: int,
) -> dict[str, int]:
    """Day `day` of change, in one transaction per database; returns its counts."""
    settings = company.settings
    truth_folder = directory / "truth"
    rng = random.Random(f"{settings.seed}:mutate:{day}")
    # The day's new orders are placed in the ORDER_WINDOW_MS before `start`, and every
    # stamp of the day must be later than every stamp already stored: an extract's
    # cursor has passed those, so a record stamped behind them would never be fetched.
    start = max(clock.now_ms() - 120_000, newest_update(connections) + 1 + ORDER_WINDOW_MS)
    for conn in connections.values():
        conn.execute("begin immediate")
    company.refs.execute("begin")
    sink = generate.Sink(connections, truth_folder)
    sink.writers = {
        system: storage.BulkWriter(conn, own_transactions=False)
        for system, conn in connections.items()
    }
    sink.day = day
    new_customers = max(2, settings.customers // 100)
    for n in range(new_customers):
        generate.build_customer(company, sink, company.counters.customer, created_ms=start + n)
    new_orders = max(5, settings.orders // 100)
    orders_before = company.counters.order
    generate.build_orders(company, sink, rng, new_orders, start - ORDER_WINDOW_MS, start, start)
    sink.flush()
    dirty = dirty_keys(truth_folder)
    stamps = Stamps(newest_update(connections) + 1)
    changes = max(3, settings.orders // 120)
    counts = {
        "customers": new_customers,
        "orders": company.counters.order - orders_before,
        "payments": pay_invoices(company, sink, connections, rng, stamps, dirty, changes),
        "shipments": ship_orders(sink, connections, rng, stamps, dirty, changes),
        "customer_updates": update_customers(
            company, sink, connections, rng, stamps, dirty, max(2, settings.customers // 100)
        ),
    }
    for conn in connections.values():
        conn.execute("commit")
    company.refs.execute("commit")
    sink.close()
    return counts
