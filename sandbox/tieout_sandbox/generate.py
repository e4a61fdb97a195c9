"""Seeds the four sandbox systems with one consistent company plus injected, recorded divergence.

Streams entity by entity into SQLite and JSONL; it must never hold the whole company in memory,
and it must never inject a difference it does not write to the ground truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tieout_sandbox import (
    MAX_SCALE,
    SYSTEMS,
    billing,
    clock,
    credentials,
    crm,
    datadir,
    erp,
    shop,
    storage,
    vocabulary,
)

DEFAULT_AS_OF = "2026-11-01T00:00:00Z"
HOUR_MS = 3_600_000
DAY_MS = clock.DAY_MS
HISTORY_DAYS = 730
BENIGN_SAMPLE = 25

# Customer fields, the system that is their source of truth, and where a wrong value may go.
CAUSE_FIELDS = {
    "changed_email": ("email",),
    "changed_phone": ("phone",),
    "name_typo": ("name",),
    "stale_address": ("street", "postcode", "city"),
    "vat_typo": ("vat_number",),
}
CAUSE_SYSTEMS = {
    "changed_email": ("erp", "billing", "shop"),
    "changed_phone": ("erp", "billing", "shop"),
    "name_typo": ("crm", "billing", "shop"),
    "stale_address": ("crm", "billing", "shop"),
    "vat_typo": ("crm",),
}
MISSING_HOW = {"crm": ("absent", "archived"), "billing": ("absent", "deleted"), "shop": ("absent",)}


@dataclass
class Settings:
    seed: int
    scale: float
    as_of_ms: int

    @property
    def customers(self) -> int:
        return max(20, round(1000 * self.scale))

    @property
    def products(self) -> int:
        return max(20, round(200 * self.scale))

    @property
    def orders(self) -> int:
        return max(100, round(10_000 * self.scale))

    @property
    def companies(self) -> int:
        return max(5, self.customers // 8)


@dataclass
class Counters:
    """Next sequence numbers per id space; persisted so `mutate` continues them."""

    customer: int = 0
    crm_contact: int = 0
    crm_company: int = 0
    billing_customer: int = 0
    shop_customer: int = 0
    extra_person: int = 0
    product: int = 0
    order: int = 0
    erp_order: int = 0
    invoice: int = 0
    billing_invoice: int = 0
    payment: int = 0
    line: int = 0


@dataclass
class Entities:
    """True counts of real-world entities (records in their master system)."""

    customer: int = 0
    product: int = 0
    order: int = 0
    order_line: int = 0
    invoice: int = 0
    payment: int = 0


def crm_contact_id(n: int) -> str:
    return str(51_000_000 + n)


def crm_company_id(n: int) -> str:
    return str(20_000_000 + n)


def customer_no(n: int) -> str:
    return f"C-{n + 1:06d}"


def stripe_id(prefix: str, seed: int, n: int) -> str:
    return prefix + hashlib.sha256(f"{seed}:{prefix}:{n}".encode()).hexdigest()[:16]


def shop_customer_id(n: int) -> int:
    return 7_000_000_000 + n


def shop_order_id(n: int) -> int:
    return 5_000_000_000 + n


def sku(n: int) -> str:
    return f"SKU-{n + 1:05d}"


def ascii_only(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().replace(" ", "")


class Sink:
    """Where generated records and ground truth go: bulk writers per system and JSONL files."""

    def __init__(self, connections: dict[str, sqlite3.Connection], truth_folder: Path) -> None:
        self.connections = connections
        self.writers = {system: storage.BulkWriter(conn) for system, conn in connections.items()}
        truth_folder.mkdir(parents=True, exist_ok=True)
        self.divergences = (truth_folder / "divergences.jsonl").open("a", encoding="utf-8")
        self.balances = (truth_folder / "balance_breaks.jsonl").open("a", encoding="utf-8")
        self.benign = (truth_folder / "benign.jsonl").open("a", encoding="utf-8")
        self.benign_counts: dict[str, int] = {}
        self.day = 0

    def record(
        self,
        system: str,
        table: str,
        pk: Any,
        created_ms: int,
        updated_ms: int,
        doc: dict[str, Any],
    ) -> None:
        self.writers[system].add(table, pk, updated_ms, created_ms, doc)

    def divergence(self, **item: Any) -> None:
        item.setdefault("field", None)
        item["day"] = self.day
        write_line(self.divergences, item)

    def balance(self, **item: Any) -> None:
        item["day"] = self.day
        write_line(self.balances, item)

    def benign_item(self, sampled: bool, **item: Any) -> None:
        kind = item["kind"]
        if sampled and self.benign_counts.get(kind, 0) >= BENIGN_SAMPLE:
            return
        self.benign_counts[kind] = self.benign_counts.get(kind, 0) + 1
        item["day"] = self.day
        write_line(self.benign, item)

    def wants_benign(self, kind: str) -> bool:
        return self.benign_counts.get(kind, 0) < BENIGN_SAMPLE

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()
        for handle in (self.divergences, self.balances, self.benign):
            handle.flush()

    def close(self) -> None:
        self.flush()
        for handle in (self.divergences, self.balances, self.benign):
            handle.close()


def write_line(handle: TextIO, item: dict[str, Any]) -> None:
    handle.write(json.dumps(item, separators=(",", ":"), sort_keys=True) + "\n")


@dataclass
class Company:
    """The state the generator carries between entities: small lookup tables, never records."""

    settings: Settings
    counters: Counters
    entities: Entities
    refs: sqlite3.Connection  # generator.sqlite: ids of each customer and product across systems
    companies: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # name, domain, vat, country
    prices: list[int] = field(default_factory=list)  # EUR list price per product index
    no_orders: set[int] = field(default_factory=set)  # customers that must not get orders


# ---------------------------------------------------------------- customers


def customer_plan(rng: random.Random) -> tuple[str, str | None, str | None]:
    """(action, system, detail): the first draws of a customer's own random stream."""
    u = rng.random()
    if u < 0.006:
        system = rng.choice(("crm", "billing", "shop"))
        return "missing", system, rng.choice(MISSING_HOW[system])
    if u < 0.011:
        return "duplicate", rng.choice(("crm", "billing", "shop")), None
    if u < 0.031:
        cause = rng.choice(tuple(CAUSE_FIELDS))
        return "mismatch", rng.choice(CAUSE_SYSTEMS[cause]), cause
    if u < 0.046:
        return (
            "benign",
            rng.choice(("erp", "billing", "shop")),
            rng.choice(("upper", "capitalized", "whitespace")),
        )
    return "clean", None, None


def customer_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:customer:{index}")


def takes_orders(plan: tuple[str, str | None, str | None]) -> bool:
    """Customers missing from billing or shop never order: an order there needs the customer."""
    action, system, _ = plan
    return not (action == "missing" and system in ("billing", "shop"))


def draw_person(rng: random.Random, company: Company, index_tag: str) -> dict[str, Any]:
    """A customer's true values (the canonical view), keyed by canonical field names."""
    first, last = rng.choice(vocabulary.FIRST_NAMES), rng.choice(vocabulary.LAST_NAMES)
    domain = rng.choice(vocabulary.EMAIL_DOMAINS)
    country = rng.choices(
        [c for c, _ in vocabulary.COUNTRY_WEIGHTS], [w for _, w in vocabulary.COUNTRY_WEIGHTS]
    )[0]
    company_name, vat = None, None
    if company.companies and rng.random() < 0.4:
        company_name, _, vat, country = rng.choice(company.companies)
    city_index = rng.randrange(len(vocabulary.CITIES[country]))
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{ascii_only(first)}.{ascii_only(last)}.{index_tag}@{domain}".lower(),
        "phone": f"{vocabulary.PHONE_PREFIX[country]}{rng.randrange(10**8, 10**9)}",
        "street": f"{rng.choice(vocabulary.STREETS[country])} {rng.randint(1, 199)}",
        "postcode": vocabulary.postcode(country, rng.randrange(10**6) + city_index * 7919),
        "city": vocabulary.CITIES[country][city_index],
        "country": country,
        "vat_number": vat,
        "company": company_name,
    }


def canonical_value(view: dict[str, Any], name: str) -> Any:
    if name == "name":
        return f"{view['first_name']} {view['last_name']}"
    return view[name]


def perturb_customer(rng: random.Random, view: dict[str, Any], cause: str) -> None:
    """Change `view` so each field of `cause` differs from the truth even after normalizing."""
    if cause == "changed_email":
        local, domain = view["email"].split("@")
        view["email"] = f"{local.split('.')[0]}{rng.randint(1, 99)}@{'alt.' + domain}"
    elif cause == "changed_phone":
        tail = int(view["phone"][-3:])
        view["phone"] = view["phone"][:-3] + f"{(tail + rng.randint(1, 998)) % 1000:03d}"
    elif cause == "name_typo":
        first = view["first_name"]
        cut = rng.randrange(1, len(first))
        view["first_name"] = first[:cut] + first[cut + 1 :]
    elif cause == "stale_address":
        country = view["country"]
        cities = [c for c in vocabulary.CITIES[country] if c != view["city"]]
        view["city"] = rng.choice(cities)
        old_street = view["street"]
        while view["street"] == old_street:
            view["street"] = f"{rng.choice(vocabulary.STREETS[country])} {rng.randint(200, 399)}"
        old_postcode = view["postcode"]
        while view["postcode"] == old_postcode:
            view["postcode"] = vocabulary.postcode(country, rng.randrange(10**6))
    elif cause == "vat_typo":
        vat = view["vat_number"]
        view["vat_number"] = vat[:-1] + str((int(vat[-1]) + rng.randint(1, 9)) % 10)


def benign_email(email: str, style: str) -> str:
    if style == "upper":
        return email.upper()
    if style == "capitalized":
        return email[0].upper() + email[1:]
    return f"  {email} "


def customer_keys(ids: dict[str, Any], holders: set[str]) -> dict[str, Any]:
    keys = {"canonical": ids["erp"]}
    keys.update({system: ids[system] for system in SYSTEMS if system in holders})
    return keys


@dataclass(slots=True)
class CustomerDraft:
    """One customer on its way into the systems: the truth, each system's view of it, its ids."""

    company: Company
    sink: Sink
    rng: random.Random
    action: str  # clean, missing, duplicate, mismatch or benign (see customer_plan)
    target: str  # the system the action concerns ("" for a clean customer)
    detail: str  # how it is missing, the cause of a mismatch, the style of a benign quirk
    truth: dict[str, Any]
    views: dict[str, dict[str, Any]]  # what each system serves; only an action changes one
    created_in: dict[str, int]
    updated_in: dict[str, int]
    ids: dict[str, Any]
    keys: dict[str, Any]  # the ids of the live records, for the ground truth
    tombstone: str | None  # "archived" or "deleted": the target keeps a dead record
    blocked: bool
    created_ms: int | None  # None while seeding; `mutate` passes its now


CustomerStep = Callable[[CustomerDraft], None]
# action → (moment, function): "views" before the records are written, "written" after
CUSTOMER_ACTIONS: dict[str, tuple[str, CustomerStep]] = {}


def customer_action(action: str, moment: str) -> Callable[[CustomerStep], CustomerStep]:
    def register(apply: CustomerStep) -> CustomerStep:
        CUSTOMER_ACTIONS[action] = (moment, apply)
        return apply

    return register


def act(customer: CustomerDraft, moment: str) -> None:
    found = CUSTOMER_ACTIONS.get(customer.action)
    if found is not None and found[0] == moment:
        found[1](customer)


def next_customer_id(company: Company, system: str) -> Any:
    """The next record id in crm, billing or shop (erp numbers are the customer's own)."""
    counters = company.counters
    if system == "crm":
        record_id: Any = crm_contact_id(counters.crm_contact)
        counters.crm_contact += 1
    elif system == "billing":
        record_id = stripe_id("cus_", company.settings.seed, counters.billing_customer)
        counters.billing_customer += 1
    else:
        record_id = shop_customer_id(counters.shop_customer)
        counters.shop_customer += 1
    return record_id


def write_customer_record(
    sink: Sink,
    system: str,
    record_id: Any,
    view: dict[str, Any],
    erp_no: str | None,
    created: int,
    updated: int,
    tombstone: str | None = None,
) -> None:
    """A customer record in crm, billing or shop."""
    if system == "crm":
        table = "contacts"
        doc = crm.contact_record(record_id, view, erp_no, created, updated, tombstone == "archived")
    elif system == "billing":
        table = "customers"
        doc = billing.customer_record(
            record_id, view, erp_no, created, updated, tombstone == "deleted"
        )
    else:
        table = "customers"
        doc = shop.customer_record(record_id, view, erp_no, created, updated)
    sink.record(system, table, record_id, created, updated, doc)


def build_customer(company: Company, sink: Sink, index: int, created_ms: int | None = None) -> None:
    """One real customer in every system, with at most one injected divergence or benign quirk.

    `created_ms` None draws a time in the seeded history; `mutate` passes now.
    """
    rng = customer_rng(company.settings.seed, index)
    plan = customer_plan(rng)
    customer = draft_customer(company, sink, rng, index, plan, created_ms)
    act(customer, "views")
    ids, views = customer.ids, customer.views
    created_in, updated_in = customer.created_in, customer.updated_in
    for system in ("crm", "billing", "shop"):
        if system in ids:
            write_customer_record(
                sink,
                system,
                ids[system],
                views[system],
                ids["erp"],
                created_in[system],
                updated_in[system],
                customer.tombstone,
            )
    doc = erp.customer_record(
        ids["erp"],
        views["erp"],
        ids.get("crm"),
        ids.get("billing"),
        customer.blocked,
        updated_in["erp"],
    )
    sink.record("erp", "customers", ids["erp"], created_in["erp"], updated_in["erp"], doc)
    act(customer, "written")
    company.refs.execute(
        "insert into customers values (?, ?, ?, ?, ?, ?, ?)",
        (
            index,
            ids["erp"],
            ids.get("crm"),
            ids.get("billing"),
            ids.get("shop"),
            vocabulary.CURRENCY[customer.truth["country"]],
            int(takes_orders(plan) and customer.action == "clean"),
        ),
    )
    if not takes_orders(plan):
        company.no_orders.add(index)
    if rng.random() < 0.006:
        build_extra_customer(company, sink, rng, created_in["erp"])


def draft_customer(
    company: Company,
    sink: Sink,
    rng: random.Random,
    index: int,
    plan: tuple[str, str | None, str | None],
    created_ms: int | None,
) -> CustomerDraft:
    """The customer's truth, times and ids, drawn in a fixed sequence."""
    settings, counters = company.settings, company.counters
    action, target, detail = plan[0], plan[1] or "", plan[2] or ""
    truth = draw_person(rng, company, str(index + 1))
    if created_ms is None:
        created = settings.as_of_ms - rng.randint(10, 900) * DAY_MS - rng.randrange(DAY_MS)
        updated = created + rng.randrange(max(1, settings.as_of_ms - created - DAY_MS))
    else:
        created = updated = created_ms
    blocked = rng.random() < 0.01
    created_in = {
        "erp": created,
        "crm": created - rng.randrange(3 * DAY_MS),
        "billing": created + rng.randrange(2 * HOUR_MS),
        "shop": created + rng.randrange(HOUR_MS),
    }
    updated_in = {
        system: max(created_in[system], updated + rng.randrange(60_000)) for system in SYSTEMS
    }
    # a missing customer is absent from its target, or there as an archived/deleted record
    tombstone = detail if action == "missing" and detail != "absent" else None
    holders = set(SYSTEMS)
    if action == "missing" and detail == "absent":
        holders.discard(target)
    ids: dict[str, Any] = {"erp": customer_no(counters.customer)}
    for system in ("crm", "billing", "shop"):
        if system in holders:
            ids[system] = next_customer_id(company, system)
    counters.customer += 1
    company.entities.customer += 1
    live = holders - ({target} if tombstone else set())
    return CustomerDraft(
        company=company,
        sink=sink,
        rng=rng,
        action=action,
        target=target,
        detail=detail,
        truth=truth,
        views={system: dict(truth) for system in SYSTEMS},
        created_in=created_in,
        updated_in=updated_in,
        blocked=blocked,
        ids=ids,
        keys=customer_keys(ids, live),
        tombstone=tombstone,
        created_ms=created_ms,
    )


@customer_action("mismatch", "views")
def customer_mismatch(customer: CustomerDraft) -> None:
    """The target serves a wrong value for the fields of a cause (its source of truth is right)."""
    target, cause = customer.target, customer.detail
    truth, views = customer.truth, customer.views
    if cause == "vat_typo" and not truth["vat_number"]:
        cause = "name_typo"
    if cause == "name_typo" and target not in CAUSE_SYSTEMS["name_typo"]:
        target = "crm"
    perturb_customer(customer.rng, views[target], cause)
    if cause == "stale_address":
        customer.updated_in[target] = customer.created_in[target]
    for name in CAUSE_FIELDS[cause]:
        customer.sink.divergence(
            kind="value_mismatch",
            entity="customer",
            system=target,
            field=name,
            keys=customer.keys,
            expected=canonical_value(truth, name),
            actual=canonical_value(views[target], name),
            actual_raw=served_customer_value(target, views[target], name),
            cause=cause,
        )


@customer_action("benign", "views")
def customer_benign(customer: CustomerDraft) -> None:
    """The target writes the email in another case or with spaces: no divergence."""
    target, truth = customer.target, customer.truth
    customer.views[target]["email"] = benign_email(truth["email"], customer.detail)
    customer.sink.benign_item(
        False,
        kind="email_case_whitespace",
        entity="customer",
        system=target,
        field="email",
        keys=customer.keys,
        canonical=truth["email"],
        served=customer.views[target]["email"],
    )


@customer_action("missing", "views")
def customer_missing(customer: CustomerDraft) -> None:
    target = customer.target
    missing_keys = dict(customer.keys)
    if customer.tombstone:
        missing_keys[target] = customer.ids[target]
    customer.sink.divergence(
        kind="missing_in_system",
        entity="customer",
        system=target,
        keys=missing_keys,
        expected="present",
        actual=customer.detail,
        cause=f"missing_{customer.detail}",
    )


@customer_action("duplicate", "written")
def customer_duplicate(customer: CustomerDraft) -> None:
    """A second record of the customer in the target, identical in every compared field."""
    target, ids = customer.target, customer.ids
    company, created_in = customer.company, customer.created_in
    latest = company.settings.as_of_ms if customer.created_ms is None else customer.created_ms + 1
    twin_created = min(latest, created_in[target] + customer.rng.randint(1, 200) * DAY_MS)
    twin_created = max(twin_created, created_in[target] + 1)
    twin_id = next_customer_id(company, target)
    write_customer_record(
        customer.sink,
        target,
        twin_id,
        customer.views[target],
        ids["erp"],
        twin_created,
        twin_created,
    )
    customer.sink.divergence(
        kind="duplicate_key",
        entity="customer",
        system=target,
        keys=dict(customer.keys, **{target: sorted([ids[target], twin_id])}),
        expected=1,
        actual=2,
        cause="duplicate_record",
    )


def served_customer_value(system: str, view: dict[str, Any], name: str) -> Any:
    """The raw value a system serves for a canonical customer field (crm countries are names)."""
    if name == "name" and system in ("crm", "shop"):
        return {"first": view["first_name"], "last": view["last_name"]}
    return canonical_value(view, name)


def build_extra_customer(company: Company, sink: Sink, rng: random.Random, created: int) -> None:
    """A record in crm, billing or shop that matches no erp customer: no cross-reference and an
    email no real customer has (its local part ends in `.x<n>`)."""
    counters = company.counters
    system = rng.choice(("crm", "billing", "shop"))
    view = draw_person(rng, company, f"x{counters.extra_person + 1}")
    counters.extra_person += 1
    record_id = next_customer_id(company, system)
    write_customer_record(sink, system, record_id, view, None, created, created)
    sink.divergence(
        kind="extra_in_system",
        entity="customer",
        system=system,
        keys={system: record_id},
        expected="absent",
        actual="present",
        cause="no_master_record",
    )


# ---------------------------------------------------------------- companies and products


def build_crm_company(company: Company, sink: Sink, index: int) -> None:
    rng = random.Random(f"{company.settings.seed}:company:{index}")
    country = rng.choices(
        [c for c, _ in vocabulary.COUNTRY_WEIGHTS], [w for _, w in vocabulary.COUNTRY_WEIGHTS]
    )[0]
    base = rng.choice(vocabulary.LAST_NAMES)
    word = rng.choice(vocabulary.PRODUCT_WORDS).split()[0]
    name = f"{base} {word} {vocabulary.COMPANY_SUFFIX[country]}"
    domain = f"{ascii_only(base).lower()}{index + 1}.example"
    vat = f"{country}{rng.randrange(10**8, 10**9)}"
    company.companies.append((name, domain, vat, country))
    company_id = crm_company_id(company.counters.crm_company)
    company.counters.crm_company += 1
    created = company.settings.as_of_ms - rng.randint(400, 1200) * DAY_MS
    updated = created + rng.randrange(300 * DAY_MS)
    sink.record(
        "crm",
        "companies",
        company_id,
        created,
        updated,
        crm.company_record(company_id, name, domain, vat, created, updated),
    )


def build_product(company: Company, sink: Sink, index: int, created_ms: int | None = None) -> None:
    """A product in erp (master) and shop; 3% carry a different price in shop."""
    rng = random.Random(f"{company.settings.seed}:product:{index}")
    price = rng.choice(vocabulary.PRICE_POINTS)
    title = f"{rng.choice(vocabulary.PRODUCT_ADJECTIVES)} {rng.choice(vocabulary.PRODUCT_WORDS)}"
    active = rng.random() < 0.97
    if created_ms is None:
        created = company.settings.as_of_ms - rng.randint(HISTORY_DAYS, HISTORY_DAYS + 300) * DAY_MS
        updated = created + rng.randrange(HISTORY_DAYS * DAY_MS)
    else:
        created = updated = created_ms
    code = sku(index)
    shop_id, variant_id = 8_000_000_000 + index, 40_000_000_000 + index
    shop_price = price
    if rng.random() < 0.03:
        delta = rng.choice((10, 50, 100, 500))
        shop_price = price - delta if price - delta > 0 and rng.random() < 0.5 else price + delta
        sink.divergence(
            kind="value_mismatch",
            entity="product",
            system="shop",
            field="price",
            keys={"canonical": code, "erp": code, "shop": shop_id},
            expected=clock.money(price),
            actual=clock.money(shop_price),
            actual_raw=clock.money(shop_price),
            cause="price_not_synced",
        )
    sink.record(
        "erp",
        "products",
        code,
        created,
        updated,
        erp.product_record(code, title, price, active, updated),
    )
    shop_updated = updated + rng.randrange(60_000)
    sink.record(
        "shop",
        "products",
        shop_id,
        created,
        shop_updated,
        shop.product_record(shop_id, variant_id, title, code, shop_price, created, shop_updated),
    )
    company.prices.append(price)
    company.refs.execute("insert into products values (?, ?, ?)", (index, code, price))
    company.counters.product += 1
    company.entities.product += 1


# ---------------------------------------------------------------- orders, invoices, payments

# Cumulative thresholds of the per-order injections (at most one per order and its invoice);
# what each one does is its function in ORDER_INJECTIONS, below.
ORDER_INJECTION_THRESHOLDS = (
    (0.004, "order_missing_erp"),
    (0.008, "order_duplicate_erp"),
    (0.016, "order_status_shop"),
    (0.024, "order_amount_erp"),
    (0.032, "invoice_amount_billing"),
    (0.037, "invoice_status_erp"),
    (0.040, "invoice_missing_billing"),
    (0.042, "invoice_duplicate_billing"),
    (0.045, "invoice_customer_billing"),
    (0.048, "invoice_due_billing"),
    (0.050, "invoice_currency_billing"),
    (0.058, "payment_amount"),
    (0.061, "payment_unapplied"),
)
OTHER_STATUS = {"open": "shipped", "shipped": "open", "closed": "open", "cancelled": "open"}
WRONG_INVOICE_STATUS = {"paid": "open", "open": "paid", "void": "open"}


def draw_order_injection(rng: random.Random) -> str:
    u = rng.random()
    for threshold, name in ORDER_INJECTION_THRESHOLDS:
        if u < threshold:
            return name
    return "clean"


@dataclass
class CustomerRef:
    index: int
    customer_no: str
    billing_id: str
    shop_id: int
    currency: str


def customer_ref(company: Company, index: int) -> CustomerRef:
    row = company.refs.execute(
        "select customer_no, billing_id, shop_id, currency from customers where idx = ?", (index,)
    ).fetchone()
    return CustomerRef(index, row[0], row[1], row[2], row[3])


def pick_customer(company: Company, rng: random.Random, clean_only: bool = False) -> CustomerRef:
    """A random customer who may order (and, with `clean_only`, has no injected quirk at all)."""
    while True:
        index = rng.randrange(company.counters.customer)
        if index in company.no_orders:
            continue
        if clean_only:
            row = company.refs.execute(
                "select clean from customers where idx = ?", (index,)
            ).fetchone()
            if not row[0]:
                continue
        return customer_ref(company, index)


def local_price(eur_cents: int, currency: str) -> int:
    return round(eur_cents * vocabulary.RATE_PER_EUR[currency])


def money_delta(rng: random.Random, total: int) -> int:
    """A non-zero change of at least one cent that keeps the amount positive."""
    delta = rng.choice((-1, 1)) * rng.choice((1, 1, 2, 5, 10, 50, 99, 250))
    return delta if total + delta > 0 else abs(delta)


@dataclass(slots=True)
class OrderDraft:
    """One order on its way into the systems: the true values, what each system will serve, and
    its ground truth. Injections change the served values; the true ones never change."""

    company: Company
    sink: Sink
    rng: random.Random
    injection: str
    kind: OrderInjection  # what the injection does, from ORDER_INJECTIONS
    customer: CustomerRef
    lines: list[tuple[int, str, int, int]]
    total: int
    status: str
    status_ms: int
    issued: int
    due_on: str
    invoice_status: str
    paid_ms: int
    live_ms: int
    ordered_ms: int
    # what the systems serve: the true values until an injection changes one
    shop_status: str = field(init=False)
    erp_total: int = field(init=False)
    erp_invoice_status: str = field(init=False)
    billing_amount: int = field(init=False)
    billing_currency: str = field(init=False)
    billing_customer: CustomerRef = field(init=False)
    billing_due: str = field(init=False)
    paid: int = field(init=False)  # the succeeded payment of a paid invoice
    # ids and times, as the records are written
    order_id: int = 0
    order_keys: dict[str, Any] = field(default_factory=dict)
    order_no: str = ""
    erp_updated: int = 0
    invoice_no: str = ""
    invoice_keys: dict[str, Any] = field(default_factory=dict)
    invoice_updated: int = 0
    billing_id: str = ""
    billing_updated: int = 0
    divergences: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.shop_status = self.status
        self.erp_total = self.billing_amount = self.paid = self.total
        self.erp_invoice_status = self.invoice_status
        self.billing_currency = self.customer.currency
        self.billing_customer = self.customer
        self.billing_due = self.due_on

    @property
    def currency(self) -> str:
        return self.customer.currency

    def divergence(self, **item: Any) -> None:
        """Recorded when the order is complete: `order_keys` and `invoice_keys` are still filled
        in as later records get their ids, and the truth must name every record the order got."""
        self.divergences.append(item)


@dataclass(frozen=True)
class OrderInjection:
    """What one injection kind does, and the moment of the order's writing at which it acts:

    - `order`: before the shop order is written;
    - `shop_order_written`: before the erp order (returns True: no records follow);
    - `erp_order`: the erp order has its number, before it is written;
    - `erp_order_written`, then `erp_invoice` (numbered, before it is written);
    - `erp_invoice_written`: before the billing invoice (returns True: no records follow);
    - `billing_invoice`: numbered, before it is written; then `billing_invoice_written`;
    - `payment`: the succeeded payment of a paid invoice, before it is written;
    - `payments_written`: last.
    """

    stage: str
    apply: Callable[[OrderDraft], bool | None]
    not_on_open: bool  # an order whose invoice is open stays clean
    never_paid: bool  # its invoice cannot have been paid


ORDER_INJECTIONS: dict[str, OrderInjection] = {}
OrderStep = Callable[[OrderDraft], bool | None]


def order_injection(
    kind: str, stage: str, not_on_open: bool = False, never_paid: bool = False
) -> Callable[[OrderStep], OrderStep]:
    """Register `kind`'s function (its share of orders is in ORDER_INJECTION_THRESHOLDS)."""

    def register(apply: OrderStep) -> OrderStep:
        ORDER_INJECTIONS[kind] = OrderInjection(stage, apply, not_on_open, never_paid)
        return apply

    return register


def inject(order: OrderDraft, stage: str) -> bool:
    """Run the order's injection if it acts at `stage`; True when no records follow."""
    return order.kind.stage == stage and bool(order.kind.apply(order))


def build_order(
    company: Company, sink: Sink, rng: random.Random, ordered_ms: int, live_ms: int
) -> None:
    """One shop order (master) with its erp sales order, erp and billing invoice and payments.

    `live_ms` is "now" for this order: statuses and payments are what they would be by then.
    """
    order = draft_order(company, sink, rng, ordered_ms, live_ms)
    write_order(order)
    for item in order.divergences:
        sink.divergence(**item)


def draw_lines(
    company: Company, rng: random.Random, currency: str
) -> list[tuple[int, str, int, int]]:
    """(line id, sku, quantity, unit price in `currency`) for one to five products."""
    counters = company.counters
    lines = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 5))):
        product = rng.randrange(counters.product)
        lines.append(
            (
                13_000_000_000 + counters.line,
                sku(product),
                rng.randint(1, 3),
                local_price(company.prices[product], currency),
            )
        )
        counters.line += 1
    return lines


def draft_order(
    company: Company, sink: Sink, rng: random.Random, ordered_ms: int, live_ms: int
) -> OrderDraft:
    """The order's true values, drawn in a fixed sequence (the seed reproduces the company)."""
    customer = pick_customer(company, rng)
    injection = draw_order_injection(rng)
    lines = draw_lines(company, rng, customer.currency)
    total = sum(quantity * price for _, _, quantity, price in lines)
    age = live_ms - ordered_ms
    if rng.random() < 0.03:
        status = "cancelled"
    elif age > 14 * DAY_MS:
        status = "closed"
    elif age > 3 * DAY_MS:
        status = "shipped"
    else:
        status = "open"
    status_ms = min(
        live_ms,
        ordered_ms
        + {"open": 0, "shipped": 2, "closed": 15, "cancelled": 1}[status] * DAY_MS
        + rng.randrange(HOUR_MS),
    )
    issued = (
        ordered_ms + rng.randrange(2 * HOUR_MS)
        if live_ms - ordered_ms > 2 * HOUR_MS
        else ordered_ms
    )
    due_on = clock.add_days(clock.erp_date(issued), rng.choice((14, 14, 30)))
    if status == "cancelled":
        invoice_status = "void"
    elif age > 30 * DAY_MS:
        invoice_status = "paid" if rng.random() < 0.97 else "open"
    elif age > 5 * DAY_MS:
        invoice_status = "paid" if rng.random() < 0.6 else "open"
    else:
        invoice_status = "open"
    paid_ms = min(live_ms, issued + rng.randint(1, 20) * DAY_MS + rng.randrange(DAY_MS))
    drawn = ORDER_INJECTIONS[injection]
    if drawn.not_on_open and invoice_status == "open":
        injection = "clean"
    if drawn.never_paid and invoice_status == "paid":
        invoice_status = "open"
    kind = ORDER_INJECTIONS[injection]
    return OrderDraft(
        company=company,
        sink=sink,
        rng=rng,
        injection=injection,
        kind=kind,
        customer=customer,
        lines=lines,
        total=total,
        status=status,
        status_ms=status_ms,
        issued=issued,
        due_on=due_on,
        invoice_status=invoice_status,
        paid_ms=paid_ms,
        live_ms=live_ms,
        ordered_ms=ordered_ms,
    )


def write_order(order: OrderDraft) -> None:
    """The order's records, system after system, each after the injection had its say."""
    write_shop_order(order)
    if inject(order, "shop_order_written"):
        return
    write_erp_order(order)
    inject(order, "erp_order_written")
    write_erp_invoice(order)
    if inject(order, "erp_invoice_written"):
        return
    write_billing_invoice(order)
    inject(order, "billing_invoice_written")
    write_payments(order)
    inject(order, "payments_written")


def write_shop_order(order: OrderDraft) -> None:
    company, counters = order.company, order.company.counters
    order.order_id = shop_order_id(counters.order)
    counters.order += 1
    company.entities.order += 1
    company.entities.order_line += len(order.lines)
    order.order_keys = {"canonical": order.order_id, "shop": order.order_id}
    inject(order, "order")
    financial = "paid" if order.invoice_status == "paid" else "pending"
    shop_updated = max(order.status_ms, order.paid_ms if order.invoice_status == "paid" else 0)
    order.sink.record(
        "shop",
        "orders",
        order.order_id,
        order.ordered_ms,
        shop_updated,
        shop.order_record(
            order.order_id,
            1001 + counters.order - 1,
            order.customer.shop_id,
            order.currency,
            order.total,
            order.shop_status,
            financial,
            order.lines,
            order.ordered_ms,
            shop_updated,
            order.status_ms,
        ),
    )


def next_erp_order_no(company: Company) -> str:
    order_no = f"SO-{company.counters.erp_order + 1:06d}"
    company.counters.erp_order += 1
    return order_no


def write_erp_sales_order(
    order: OrderDraft, order_no: str, total: int, created_ms: int, updated_ms: int
) -> None:
    order.sink.record(
        "erp",
        "sales_orders",
        order_no,
        created_ms,
        updated_ms,
        erp.sales_order_record(
            order_no,
            order.customer.customer_no,
            order.order_id,
            order.ordered_ms,
            order.currency,
            total,
            order.status,
            order.lines,
            updated_ms,
        ),
    )


def write_erp_order(order: OrderDraft) -> None:
    order.order_no = next_erp_order_no(order.company)
    order.order_keys["erp"] = order.order_no
    inject(order, "erp_order")
    order.erp_updated = order.status_ms + order.rng.randrange(60_000)
    write_erp_sales_order(
        order, order.order_no, order.erp_total, order.ordered_ms, order.erp_updated
    )


def write_erp_invoice(order: OrderDraft) -> None:
    company = order.company
    order.invoice_no = f"INV-{company.counters.invoice + 1:06d}"
    company.counters.invoice += 1
    company.entities.invoice += 1
    order.invoice_keys = {"canonical": order.invoice_no, "erp": order.invoice_no}
    inject(order, "erp_invoice")
    if order.invoice_status == "paid":
        order.invoice_updated = order.paid_ms
    elif order.invoice_status == "void":
        order.invoice_updated = order.status_ms
    else:
        order.invoice_updated = order.issued
    erp_invoice_updated = order.invoice_updated + order.rng.randrange(60_000)
    order.sink.record(
        "erp",
        "invoices",
        order.invoice_no,
        order.issued,
        erp_invoice_updated,
        erp.invoice_record(
            order.invoice_no,
            order.customer.customer_no,
            order.order_no,
            order.currency,
            order.total,
            order.erp_invoice_status,
            order.issued,
            order.due_on,
            erp_invoice_updated,
        ),
    )


def next_billing_invoice_id(company: Company) -> str:
    invoice_id = stripe_id("in_", company.settings.seed, company.counters.billing_invoice)
    company.counters.billing_invoice += 1
    return invoice_id


def write_billing_invoice_record(
    order: OrderDraft, invoice_id: str, created_ms: int, updated_ms: int
) -> None:
    order.sink.record(
        "billing",
        "invoices",
        invoice_id,
        created_ms,
        updated_ms,
        billing.invoice_record(
            invoice_id,
            order.billing_customer.billing_id,
            order.billing_currency,
            order.billing_amount,
            order.invoice_status,
            order.invoice_no,
            created_ms,
            updated_ms,
            order.billing_due,
        ),
    )


def write_billing_invoice(order: OrderDraft) -> None:
    order.billing_id = next_billing_invoice_id(order.company)
    order.invoice_keys["billing"] = order.billing_id
    inject(order, "billing_invoice")
    order.billing_updated = order.invoice_updated + order.rng.randrange(60_000)
    write_billing_invoice_record(order, order.billing_id, order.issued, order.billing_updated)


def write_payments(order: OrderDraft) -> None:
    """A paid invoice's payment (now and then after a failed one)."""
    if order.invoice_status != "paid":
        return
    rng, total = order.rng, order.total
    if rng.random() < 0.04:
        write_payment(
            order.company,
            order.sink,
            order.billing_customer.billing_id,
            order.billing_id,
            total,
            order.currency,
            "failed",
            order.paid_ms - HOUR_MS,
        )
    inject(order, "payment")
    payment_id = write_payment(
        order.company,
        order.sink,
        order.billing_customer.billing_id,
        order.billing_id,
        order.paid,
        order.currency,
        "succeeded",
        order.paid_ms,
    )
    if order.paid != total:
        order.sink.balance(
            kind="paid_amount_mismatch",
            invoice=order.invoice_keys,
            currency=order.currency,
            expected=clock.money(total),
            actual=clock.money(order.paid),
            payments=[payment_id],
        )


# The injection kinds, in the order of ORDER_INJECTION_THRESHOLDS, then `clean`.


@order_injection("order_missing_erp", "shop_order_written")
def order_missing_erp(order: OrderDraft) -> bool:
    order.divergence(
        kind="missing_in_system",
        entity="order",
        system="erp",
        keys=order.order_keys,
        expected="present",
        actual="absent",
        cause="order_not_imported",
    )
    order.sink.balance(
        kind="order_without_invoice",
        order=order.order_keys,
        currency=order.currency,
        amount=clock.money(order.total),
    )
    return True


@order_injection("order_duplicate_erp", "erp_order_written")
def order_duplicate_erp(order: OrderDraft) -> None:
    twin_no = next_erp_order_no(order.company)
    twin_ms = order.erp_updated + order.rng.randrange(1, HOUR_MS)
    write_erp_sales_order(order, twin_no, order.total, twin_ms, twin_ms)
    order.divergence(
        kind="duplicate_key",
        entity="order",
        system="erp",
        keys=dict(order.order_keys, erp=sorted([order.order_no, twin_no])),
        expected=1,
        actual=2,
        cause="order_imported_twice",
    )


@order_injection("order_status_shop", "order")
def order_status_shop(order: OrderDraft) -> None:
    order.shop_status = OTHER_STATUS[order.status]
    order.divergence(
        kind="value_mismatch",
        entity="order",
        system="shop",
        field="status",
        keys=order.order_keys,
        expected=order.status,
        actual=order.shop_status,
        actual_raw=order.shop_status,
        cause="fulfilment_not_synced",
    )


@order_injection("order_amount_erp", "erp_order")
def order_amount_erp(order: OrderDraft) -> None:
    order.erp_total = order.total + money_delta(order.rng, order.total)
    order.divergence(
        kind="value_mismatch",
        entity="order",
        system="erp",
        field="amount",
        keys=order.order_keys,
        expected=clock.money(order.total),
        actual=clock.money(order.erp_total),
        actual_raw=clock.money(order.erp_total),
        cause="amount_off_by_cents",
        currency=order.currency,
    )


@order_injection("invoice_amount_billing", "billing_invoice")
def invoice_amount_billing(order: OrderDraft) -> None:
    order.billing_amount = order.total + money_delta(order.rng, order.total)
    order.divergence(
        kind="value_mismatch",
        entity="invoice",
        system="billing",
        field="amount",
        keys=order.invoice_keys,
        expected=clock.money(order.total),
        actual=clock.money(order.billing_amount),
        actual_raw=order.billing_amount,
        cause="amount_off_by_cents",
        currency=order.currency,
    )


@order_injection("invoice_status_erp", "erp_invoice")
def invoice_status_erp(order: OrderDraft) -> None:
    order.erp_invoice_status = WRONG_INVOICE_STATUS[order.invoice_status]
    order.divergence(
        kind="value_mismatch",
        entity="invoice",
        system="erp",
        field="status",
        keys=order.invoice_keys,
        expected=order.invoice_status,
        actual=order.erp_invoice_status,
        actual_raw=erp.INVOICE_STATUS_TO_ERP[order.erp_invoice_status],
        cause="payment_not_synced",
    )


@order_injection("invoice_missing_billing", "erp_invoice_written", never_paid=True)
def invoice_missing_billing(order: OrderDraft) -> bool:
    order.divergence(
        kind="missing_in_system",
        entity="invoice",
        system="billing",
        keys=order.invoice_keys,
        expected="present",
        actual="absent",
        cause="invoice_not_synced",
    )
    return True


@order_injection("invoice_duplicate_billing", "billing_invoice_written")
def invoice_duplicate_billing(order: OrderDraft) -> None:
    twin_id = next_billing_invoice_id(order.company)
    twin_ms = order.billing_updated + order.rng.randrange(1, HOUR_MS)
    write_billing_invoice_record(order, twin_id, twin_ms, twin_ms)
    order.divergence(
        kind="duplicate_key",
        entity="invoice",
        system="billing",
        keys=dict(order.invoice_keys, billing=sorted([order.billing_id, twin_id])),
        expected=1,
        actual=2,
        cause="invoice_synced_twice",
    )


@order_injection("invoice_customer_billing", "billing_invoice")
def invoice_customer_billing(order: OrderDraft) -> None:
    customer = order.customer
    while order.billing_customer.index == customer.index:
        order.billing_customer = pick_customer(order.company, order.rng, clean_only=True)
    order.divergence(
        kind="value_mismatch",
        entity="invoice",
        system="billing",
        field="customer_id",
        keys=order.invoice_keys,
        expected=customer.customer_no,
        actual=order.billing_customer.customer_no,
        actual_raw=order.billing_customer.billing_id,
        cause="wrong_customer",
    )


@order_injection("invoice_due_billing", "billing_invoice")
def invoice_due_billing(order: OrderDraft) -> None:
    order.billing_due = clock.add_days(order.due_on, order.rng.randint(1, 20))
    order.divergence(
        kind="value_mismatch",
        entity="invoice",
        system="billing",
        field="due_at",
        keys=order.invoice_keys,
        expected=order.due_on,
        actual=order.billing_due,
        actual_raw=clock.berlin_midnight_epoch(order.billing_due),
        cause="due_date_changed",
    )


@order_injection("invoice_currency_billing", "billing_invoice")
def invoice_currency_billing(order: OrderDraft) -> None:
    currency = order.currency
    order.billing_currency = order.rng.choice([c for c in vocabulary.RATE_PER_EUR if c != currency])
    order.divergence(
        kind="value_mismatch",
        entity="invoice",
        system="billing",
        field="currency",
        keys=order.invoice_keys,
        expected=currency,
        actual=order.billing_currency,
        actual_raw=order.billing_currency.lower(),
        cause="wrong_currency",
    )


@order_injection("payment_amount", "payment", not_on_open=True)
def payment_amount(order: OrderDraft) -> None:
    """Paid too much or too little (the balance break is recorded with the payment)."""
    rng, total = order.rng, order.total
    order.paid = (
        total + money_delta(rng, total)
        if rng.random() < 0.3
        else max(1, total - rng.randint(1, max(1, total // 2)))
    )


@order_injection("payment_unapplied", "payments_written")
def payment_unapplied(order: OrderDraft) -> None:
    amount = order.rng.randint(500, 50_000)
    payment_id = write_payment(
        order.company,
        order.sink,
        order.customer.billing_id,
        None,
        amount,
        order.currency,
        "succeeded",
        min(order.live_ms, order.issued + order.rng.randrange(5 * DAY_MS)),
    )
    order.sink.balance(
        kind="payment_without_invoice",
        payment=payment_id,
        customer={"canonical": order.customer.customer_no},
        currency=order.currency,
        amount=clock.money(amount),
    )


@order_injection("clean", "billing_invoice")
def clean_order(order: OrderDraft) -> None:
    """No divergence; a sample of the benign differences every clean invoice carries."""
    sink, total = order.sink, order.total
    if total % 10 == 0 and sink.wants_benign("money_format"):
        sink.benign_item(
            True,
            kind="money_format",
            entity="invoice",
            field="amount",
            keys=order.invoice_keys,
            values={"erp": clock.money(total), "billing": total},
        )
    if sink.wants_benign("timezone"):
        sink.benign_item(
            True,
            kind="timezone",
            entity="invoice",
            field="due_at",
            keys=order.invoice_keys,
            values={"erp": order.due_on, "billing": clock.berlin_midnight_epoch(order.due_on)},
        )


def write_payment(
    company: Company,
    sink: Sink,
    customer_id: str,
    invoice_id: str | None,
    amount: int,
    currency: str,
    status: str,
    at_ms: int,
) -> str:
    payment_id = stripe_id("py_", company.settings.seed, company.counters.payment)
    company.counters.payment += 1
    company.entities.payment += 1
    sink.record(
        "billing",
        "payments",
        payment_id,
        at_ms,
        at_ms,
        billing.payment_record(
            payment_id, customer_id, invoice_id, amount, currency, status, at_ms, at_ms
        ),
    )
    return payment_id


def build_extra_order(company: Company, sink: Sink, rng: random.Random, at_ms: int) -> None:
    """An erp sales order entered by hand: no shop order behind it."""
    customer = pick_customer(company, rng)
    product = rng.randrange(company.counters.product)
    lines = [(0, sku(product), 1, local_price(company.prices[product], customer.currency))]
    order_no = f"SO-{company.counters.erp_order + 1:06d}"
    company.counters.erp_order += 1
    sink.record(
        "erp",
        "sales_orders",
        order_no,
        at_ms,
        at_ms,
        erp.sales_order_record(
            order_no,
            customer.customer_no,
            None,
            at_ms,
            customer.currency,
            lines[0][3],
            "open",
            lines,
            at_ms,
        ),
    )
    sink.divergence(
        kind="extra_in_system",
        entity="order",
        system="erp",
        keys={"erp": order_no},
        expected="absent",
        actual="present",
        cause="manual_order_without_shop_order",
    )


def build_extra_invoice(company: Company, sink: Sink, rng: random.Random, at_ms: int) -> None:
    """A billing invoice created by hand in billing: no erp invoice behind it."""
    customer = pick_customer(company, rng)
    invoice_id = stripe_id("in_", company.settings.seed, company.counters.billing_invoice)
    company.counters.billing_invoice += 1
    amount = rng.randint(1000, 90_000)
    due = clock.add_days(clock.erp_date(at_ms), 14)
    sink.record(
        "billing",
        "invoices",
        invoice_id,
        at_ms,
        at_ms,
        billing.invoice_record(
            invoice_id,
            customer.billing_id,
            customer.currency,
            amount,
            "open",
            None,
            at_ms,
            at_ms,
            due,
        ),
    )
    sink.divergence(
        kind="extra_in_system",
        entity="invoice",
        system="billing",
        keys={"billing": invoice_id},
        expected="absent",
        actual="present",
        cause="manual_invoice_without_erp_invoice",
    )


def build_orders(
    company: Company,
    sink: Sink,
    rng: random.Random,
    count: int,
    first_ms: int,
    last_ms: int,
    live_ms: int,
) -> None:
    """`count` orders spread evenly from `first_ms` to `last_ms`, plus hand-made extras."""
    span = max(1, last_ms - first_ms)
    step = span / max(1, count)
    for n in range(count):
        ordered = first_ms + int(n * step) + rng.randrange(max(1, int(step)))
        build_order(company, sink, rng, min(ordered, last_ms), live_ms)
        if rng.random() < 0.003:
            build_extra_order(company, sink, rng, min(ordered + HOUR_MS, live_ms))
        if rng.random() < 0.003:
            build_extra_invoice(company, sink, rng, min(ordered + HOUR_MS, live_ms))


# ---------------------------------------------------------------- seed


def open_refs(directory: Path, fresh: bool) -> sqlite3.Connection:
    path = directory / "generator.sqlite"
    if fresh:
        path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute(
        "create table if not exists customers (idx integer primary key, customer_no text,"
        " crm_id text,"
        " billing_id text, shop_id integer, currency text, clean integer)"
    )
    conn.execute(
        "create table if not exists products (idx integer primary key, sku text, price integer)"
    )
    return conn


def parse_as_of(text: str) -> int:
    return clock.parse_time(text, None)


def seed(
    directory: Path,
    scale: float,
    seed_value: int,
    as_of: str = DEFAULT_AS_OF,
    progress: bool = False,
) -> dict[str, Any]:
    """Replace the sandbox data in `directory` with a fresh company; returns the run summary.

    All or nothing: the company is built in `<directory>/.seeding` and moved in only once its
    ground truth is written, so a failed or interrupted seed leaves the previous sandbox as it
    was (its data and ground truth together), never data without its ground truth.
    """
    if not math.isfinite(scale) or not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be above 0 and at most {MAX_SCALE:g}, got {scale!r}")
    started = time.monotonic()
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    credentials.ensure_credentials(directory)
    staging = directory / ".seeding"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        entities = build_company(staging, scale, seed_value, as_of, progress)
        publish_seed(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "seconds": round(time.monotonic() - started, 2),
        "entities": entities,
        "ground_truth": str(datadir.ground_truth_path(directory)),
    }


def seeded_files() -> list[str]:
    """What a seed writes, ground truth last: its presence says the rest is complete."""
    return [
        *(datadir.database_path(Path(), system).name for system in SYSTEMS),
        "generator.sqlite",
        "truth",
        datadir.state_path(Path()).name,
        datadir.ground_truth_path(Path()).name,
    ]


def publish_seed(staging: Path, directory: Path) -> None:
    """Move a finished seed from `staging` into `directory` (renames on one file system)."""
    datadir.ground_truth_path(directory).unlink(missing_ok=True)
    for name in seeded_files():
        target = directory / name
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        if (staging / name).exists():
            (staging / name).replace(target)


def build_company(
    directory: Path, scale: float, seed_value: int, as_of: str, progress: bool
) -> dict[str, int]:
    """Write a fresh company and its ground truth into the empty folder `directory`."""
    settings = Settings(seed=seed_value, scale=scale, as_of_ms=parse_as_of(as_of))
    truth_folder = directory / "truth"
    connections = {
        system: storage.create_database(datadir.database_path(directory, system), system)
        for system in SYSTEMS
    }
    refs = open_refs(directory, fresh=True)
    company = Company(settings=settings, counters=Counters(), entities=Entities(), refs=refs)
    sink = Sink(connections, truth_folder)
    refs.execute("begin")
    for index in range(settings.companies):
        build_crm_company(company, sink, index)
    for index in range(settings.products):
        build_product(company, sink, index)
    for index in range(settings.customers):
        build_customer(company, sink, index)
        if index % 5000 == 4999:
            refs.execute("commit")
            refs.execute("begin")
    refs.execute("commit")
    rng = random.Random(f"{seed_value}:orders")
    first = settings.as_of_ms - HISTORY_DAYS * DAY_MS
    chunks = list(chunk_bounds(settings.orders, 50_000))
    for _number, (start, stop) in enumerate(chunks):
        chunk_first = first + (settings.as_of_ms - first) * start // settings.orders
        chunk_last = first + (settings.as_of_ms - first) * stop // settings.orders
        build_orders(company, sink, rng, stop - start, chunk_first, chunk_last, settings.as_of_ms)
        sink.flush()
        if progress:
            print(f"  orders {stop:,}/{settings.orders:,}", flush=True)
    sink.close()
    for system, conn in connections.items():
        storage.finish_database(conn, system)
    refs.close()
    state = {
        "seed": seed_value,
        "scale": scale,
        "as_of": as_of,
        "days_mutated": 0,
        "counters": asdict(company.counters),
        "entities": asdict(company.entities),
        "companies": company.companies,
        "no_orders": sorted(company.no_orders),
    }
    datadir.write_json(datadir.state_path(directory), state)
    assemble_ground_truth(directory, state)
    return asdict(company.entities)


def chunk_bounds(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def assemble_ground_truth(directory: Path, state: dict[str, Any]) -> None:
    """Write ground_truth.json from the JSONL parts, streaming (one item per line)."""
    truth_folder = directory / "truth"
    path = datadir.ground_truth_path(directory)
    temporary = path.with_name(path.name + ".tmp")
    header = {
        "seed": state["seed"],
        "scale": state["scale"],
        "as_of": state["as_of"],
        "days_mutated": state["days_mutated"],
        "entities": state["entities"],
    }
    with temporary.open("w", encoding="utf-8") as out:
        out.write("{\n")
        for name, value in header.items():
            out.write(f"{json.dumps(name)}: {json.dumps(value, sort_keys=True)},\n")
        parts = (
            ("divergences", "divergences.jsonl"),
            ("balance_breaks", "balance_breaks.jsonl"),
            ("benign", "benign.jsonl"),
        )
        for n, (name, file_name) in enumerate(parts):
            out.write(f"{json.dumps(name)}: [")
            first = True
            source = truth_folder / file_name
            if source.exists():
                with source.open(encoding="utf-8") as lines:
                    for line in lines:
                        out.write(("\n  " if first else ",\n  ") + line.rstrip("\n"))
                        first = False
            out.write("\n]" + ("," if n < len(parts) - 1 else "") + "\n")
        out.write("}\n")
    temporary.replace(path)


def load_company(directory: Path) -> Company:
    """The generator state of a seeded sandbox (for `mutate`)."""
    state = datadir.read_json(datadir.state_path(directory))
    settings = Settings(
        seed=state["seed"], scale=state["scale"], as_of_ms=parse_as_of(state["as_of"])
    )
    refs = open_refs(directory, fresh=False)
    company = Company(
        settings=settings,
        counters=Counters(**state["counters"]),
        entities=Entities(**state["entities"]),
        refs=refs,
        companies=[tuple(c) for c in state["companies"]],  # type: ignore[misc]
        no_orders=set(state["no_orders"]),
    )
    company.prices = [row[0] for row in refs.execute("select price from products order by idx")]
    return company
