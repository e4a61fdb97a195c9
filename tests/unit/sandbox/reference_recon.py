"""A small reference reconciler over served records, written from docs/data-model.md alone.

If it finds exactly the ground truth, the injected divergence is observable and exact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tieout_sandbox.crm import COUNTRY_NAMES

COUNTRY_CODES = {name: code for code, name in COUNTRY_NAMES.items()}
BERLIN = ZoneInfo("Europe/Berlin")

Finding = tuple[
    str, str, str, str | None, str, Any, Any
]  # kind, entity, system, field, key, expected, actual


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def email(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


def customer_views(
    records: dict[str, list[dict[str, Any]]],
) -> dict[str, list[tuple[Any, str | None, bool, dict[str, Any]]]]:
    """Per system: (id, erp cross-reference, tombstoned, canonical-field values)."""
    views: dict[str, list[tuple[Any, str | None, bool, dict[str, Any]]]] = {}
    views["crm"] = [
        (
            c["id"],
            c["properties"]["erp_customer_no"],
            c["archived"],
            {
                "name": f"{c['properties']['firstname']} {c['properties']['lastname']}",
                "email": c["properties"]["email"],
                "phone": c["properties"]["phone"],
                "street": c["properties"]["address"],
                "postcode": c["properties"]["zip"],
                "city": c["properties"]["city"],
                "country": COUNTRY_CODES[c["properties"]["country"]],
                "vat_number": c["properties"]["vat_number"],
            },
        )
        for c in records["crm.contacts"]
    ]
    views["erp"] = [
        (
            c["customer_no"],
            c["customer_no"],
            False,
            {
                "name": c["name"],
                "email": c["email_address"],
                "phone": c["phone_no"],
                "street": c["street"],
                "postcode": c["postcode"],
                "city": c["city"],
                "country": c["country_code"],
                "vat_number": c["vat_id"],
            },
        )
        for c in records["erp.customers"]
    ]
    views["billing"] = [
        (
            c["id"],
            c["metadata"].get("erp_customer_no"),
            c["deleted"],
            {
                "name": c["name"],
                "email": c["email"],
                "phone": c["phone"],
                "street": c["address"]["line1"],
                "postcode": c["address"]["postal_code"],
                "city": c["address"]["city"],
                "country": c["address"]["country"],
            },
        )
        for c in records["billing.customers"]
    ]
    views["shop"] = [
        (
            c["id"],
            c["tags"][4:] if c["tags"].startswith("erp:") else None,
            False,
            {
                "name": f"{c['first_name']} {c['last_name']}",
                "email": c["email"],
                "phone": c["phone"],
                "street": c["default_address"]["address1"],
                "postcode": c["default_address"]["zip"],
                "city": c["default_address"]["city"],
                "country": c["default_address"]["country_code"],
            },
        )
        for c in records["shop.customers"]
    ]
    return views


CUSTOMER_TRUTH = {
    "name": "erp",
    "email": "crm",
    "phone": "crm",
    "street": "erp",
    "postcode": "erp",
    "city": "erp",
    "country": "erp",
    "vat_number": "erp",
}


def same(field: str, left: Any, right: Any) -> bool:
    if field == "email":
        return email(left) == email(right)
    return bool(left == right)


def reconcile_customers(records: dict[str, list[dict[str, Any]]]) -> set[Finding]:
    findings: set[Finding] = set()
    views = customer_views(records)
    master = {key: values for key, _, _, values in views["erp"]}
    matched: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for system in ("crm", "billing", "shop"):
        live: dict[str, list[tuple[Any, dict[str, Any]]]] = defaultdict(list)
        tombstones: dict[str, str] = {}
        for record_id, ref, dead, values in views[system]:
            if dead:
                tombstones[ref or ""] = "archived" if system == "crm" else "deleted"
            elif ref in master:
                live[ref].append((record_id, values))
            else:
                findings.add(
                    (
                        "extra_in_system",
                        "customer",
                        system,
                        None,
                        str(record_id),
                        "absent",
                        "present",
                    )
                )
        for customer_no in master:
            found = live.get(customer_no, [])
            if not found:
                findings.add(
                    (
                        "missing_in_system",
                        "customer",
                        system,
                        None,
                        customer_no,
                        "present",
                        tombstones.get(customer_no, "absent"),
                    )
                )
                continue
            if len(found) > 1:
                findings.add(
                    ("duplicate_key", "customer", system, None, customer_no, 1, len(found))
                )
            matched[customer_no][system] = sorted(found, key=lambda item: str(item[0]))[0][1]
    for customer_no, erp_values in master.items():
        copies = dict(matched[customer_no], erp=erp_values)
        for field, truth_system in CUSTOMER_TRUTH.items():
            if truth_system not in copies:
                continue
            expected = copies[truth_system][field]
            for system, values in copies.items():
                if system == truth_system or field not in values:
                    continue
                if not same(field, expected, values[field]):
                    findings.add(
                        (
                            "value_mismatch",
                            "customer",
                            system,
                            field,
                            customer_no,
                            expected,
                            values[field],
                        )
                    )
    return findings


def reconcile_products(records: dict[str, list[dict[str, Any]]]) -> set[Finding]:
    findings: set[Finding] = set()
    prices = {p["sku"]: p["unit_price"] for p in records["erp.products"]}
    for product in records["shop.products"]:
        variant = product["variants"][0]
        if variant["sku"] not in prices:
            findings.add(
                (
                    "extra_in_system",
                    "product",
                    "shop",
                    None,
                    str(product["id"]),
                    "absent",
                    "present",
                )
            )
        elif variant["price"] != prices[variant["sku"]]:
            findings.add(
                (
                    "value_mismatch",
                    "product",
                    "shop",
                    "price",
                    variant["sku"],
                    prices[variant["sku"]],
                    variant["price"],
                )
            )
    return findings


def shop_status(order: dict[str, Any]) -> str:
    if order["cancelled_at"]:
        return "cancelled"
    if order["closed_at"]:
        return "closed"
    return "shipped" if order["fulfillment_status"] == "fulfilled" else "open"


def reconcile_orders(records: dict[str, list[dict[str, Any]]]) -> set[Finding]:
    findings: set[Finding] = set()
    shop_orders = {o["id"]: o for o in records["shop.orders"]}
    erp_by_shop: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for order in records["erp.sales_orders"]:
        if order["shop_order_id"] in shop_orders:
            erp_by_shop[order["shop_order_id"]].append(order)
        else:
            findings.add(
                ("extra_in_system", "order", "erp", None, order["order_no"], "absent", "present")
            )
    for order_id, order in shop_orders.items():
        copies = erp_by_shop.get(order_id, [])
        key = str(order_id)
        if not copies:
            findings.add(("missing_in_system", "order", "erp", None, key, "present", "absent"))
            continue
        if len(copies) > 1:
            findings.add(("duplicate_key", "order", "erp", None, key, 1, len(copies)))
        erp_order = sorted(copies, key=lambda o: o["order_no"])[0]
        if erp_order["total"] != order["total_price"]:
            findings.add(
                (
                    "value_mismatch",
                    "order",
                    "erp",
                    "amount",
                    key,
                    order["total_price"],
                    erp_order["total"],
                )
            )
        if erp_order["status"].lower() != shop_status(order):
            findings.add(
                (
                    "value_mismatch",
                    "order",
                    "shop",
                    "status",
                    key,
                    erp_order["status"].lower(),
                    shop_status(order),
                )
            )
    return findings


def berlin_date(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone(BERLIN).date().isoformat()


def reconcile_invoices(records: dict[str, list[dict[str, Any]]]) -> set[Finding]:
    findings: set[Finding] = set()
    erp_invoices = {i["invoice_no"]: i for i in records["erp.invoices"]}
    customer_of_billing = {
        c["id"]: c["metadata"].get("erp_customer_no") for c in records["billing.customers"]
    }
    billing_by_no: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for invoice in records["billing.invoices"]:
        number = invoice["metadata"].get("erp_invoice_no")
        if number in erp_invoices:
            billing_by_no[number].append(invoice)
        else:
            findings.add(
                ("extra_in_system", "invoice", "billing", None, invoice["id"], "absent", "present")
            )
    for number, invoice in erp_invoices.items():
        copies = billing_by_no.get(number, [])
        if not copies:
            findings.add(
                ("missing_in_system", "invoice", "billing", None, number, "present", "absent")
            )
            continue
        if len(copies) > 1:
            findings.add(("duplicate_key", "invoice", "billing", None, number, 1, len(copies)))
        bill = sorted(copies, key=lambda i: i["id"])[0]
        checks = (
            ("amount", "billing", invoice["total_amount"], money(bill["amount_due"])),
            ("currency", "billing", invoice["currency"], bill["currency"].upper()),
            (
                "customer_id",
                "billing",
                invoice["customer_no"],
                customer_of_billing.get(bill["customer"]),
            ),
            ("due_at", "billing", invoice["due_on"], berlin_date(bill["due_date"])),
            ("status", "erp", bill["status"], invoice["status"].lower()),
        )
        for field, system, expected, actual in checks:
            if expected != actual:
                findings.add(("value_mismatch", "invoice", system, field, number, expected, actual))
    return findings


def balance_breaks(records: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str, Any, Any]]:
    """(kind, key, expected, actual) for invoices vs payments and orders vs invoices."""
    breaks: set[tuple[str, str, Any, Any]] = set()
    invoiced_orders = {i["order_no"] for i in records["erp.invoices"]}
    erp_orders = {o["order_no"]: o for o in records["erp.sales_orders"]}
    shop_ids_invoiced = {erp_orders[n]["shop_order_id"] for n in invoiced_orders if n in erp_orders}
    for order in records["shop.orders"]:
        if order["id"] not in shop_ids_invoiced:
            breaks.add(("order_without_invoice", str(order["id"]), None, order["total_price"]))
    paid: dict[str, int] = defaultdict(int)
    for payment in records["billing.payments"]:
        if payment["status"] != "succeeded":
            continue
        if payment["invoice"] is None:
            breaks.add(("payment_without_invoice", payment["id"], None, money(payment["amount"])))
        else:
            paid[payment["invoice"]] += payment["amount"]
    erp_invoices = {i["invoice_no"]: i for i in records["erp.invoices"]}
    paid_by_number: dict[str, int] = defaultdict(int)
    status_by_number: dict[str, str] = {}
    for bill in records["billing.invoices"]:
        number = bill["metadata"].get("erp_invoice_no")
        if number in erp_invoices:
            paid_by_number[number] += paid[bill["id"]]
            status_by_number[number] = bill["status"]
    for number, status in status_by_number.items():
        expected = erp_invoices[number]["total_amount"]
        if status == "paid" and money(paid_by_number[number]) != expected:
            breaks.add(("paid_amount_mismatch", number, expected, money(paid_by_number[number])))
    return breaks


def reconcile(records: dict[str, list[dict[str, Any]]]) -> set[Finding]:
    return (
        reconcile_customers(records)
        | reconcile_products(records)
        | reconcile_orders(records)
        | reconcile_invoices(records)
    )


def truth_findings(truth: dict[str, Any]) -> set[Finding]:
    """The ground truth's divergences in the same tuple shape as `reconcile`."""
    found: set[Finding] = set()
    for item in truth["divergences"]:
        keys = item["keys"]
        key = str(keys["canonical"]) if "canonical" in keys else str(keys[item["system"]])
        found.add(
            (
                item["kind"],
                item["entity"],
                item["system"],
                item["field"],
                key,
                item["expected"],
                item["actual"],
            )
        )
    return found


def truth_breaks(truth: dict[str, Any]) -> set[tuple[str, str, Any, Any]]:
    found: set[tuple[str, str, Any, Any]] = set()
    for item in truth["balance_breaks"]:
        if item["kind"] == "order_without_invoice":
            found.add((item["kind"], str(item["order"]["canonical"]), None, item["amount"]))
        elif item["kind"] == "payment_without_invoice":
            found.add((item["kind"], item["payment"], None, item["amount"]))
        else:
            found.add(
                (item["kind"], item["invoice"]["canonical"], item["expected"], item["actual"])
            )
    return found
