"""What finance should do about each group of differences, in plain words.

Pure functions from a group's system, entity, kind, field, state and count to a sentence; the
technical name stays beside the plain one. They must never decide a state: build.py does.
"""

from __future__ import annotations

from typing import Any

KIND_NAMES = {
    "missing_in_system": "missing from the system",
    "extra_in_system": "only in this system",
    "value_mismatch": "different value",
    "duplicate_key": "duplicate record",
    "null_key": "record without a key",
    # balance breaks
    "paid_amount_mismatch": "marked paid, payments differ",
    "order_without_invoice": "order without invoice",
    "payment_without_invoice": "payment without invoice",
    "amount_mismatch": "invoices differ from the order",
    "currency_mismatch": "paid in another currency",
}

SYSTEM_NAMES = {"crm": "CRM", "erp": "ERP", "billing": "billing", "shop": "webshop"}

STATE_NAMES = {
    "needs_person": "needs a person",
    "dead": "write gave up",
    "failed": "write failed, retried",
    "held": "held",
    "queued": "queued",
    "fixed": "fixed tonight",
    "resolved": "resolved at the source",
    "waived": "waived",
}
# the order the page lists them: what needs someone first, what went well last
STATE_ORDER = tuple(STATE_NAMES)

PLURALS = {
    "customer": "customers",
    "order": "orders",
    "invoice": "invoices",
    "payment": "payments",
    "product": "products",
    "order_line": "order lines",
}

# balance outcomes that are breaks (money that does not add up), with the system to fix them in
BREAKS = {
    "paid_amount_mismatch": ("billing", "invoice"),
    "order_without_invoice": ("erp", "order"),
    "payment_without_invoice": ("billing", "payment"),
    "amount_mismatch": ("erp", "order"),
    "currency_mismatch": ("billing", "invoice"),
}
# balance outcomes that are ordinary receivables, shown in the aging view instead
RECEIVABLES = ("unpaid", "underpaid", "overpaid")


def system_name(system: str) -> str:
    return SYSTEM_NAMES.get(system, system)


def system_title(system: str) -> str:
    name = system_name(system)
    return name[:1].upper() + name[1:]


def shown_values(kind: str, canonical: str | None, system: str | None) -> tuple[str, str]:
    """What the agreed record and the system say, in words for the kinds that have no value."""
    if kind == "missing_in_system":
        return "exists", "missing"
    if kind == "extra_in_system":
        return "no such record", "exists"
    if kind == "duplicate_key":
        return "1 record", f"{system} records" if system else "more than 1 record"
    if kind == "null_key":
        return "a key", "no key"
    return canonical or "", system or ""


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind.replace("_", " "))


def things(entity: str, count: int) -> str:
    noun = entity.replace("_", " ") if count == 1 else PLURALS.get(entity, entity + "s")
    return f"{count:,} {noun}"


def field_name(field: str) -> str:
    return field.removesuffix("_id").replace("_", " ") if field else ""


def sentence(group: dict[str, Any], masters: dict[str, str] | None = None) -> str:
    """One line saying what happens to, or what to do about, a group of differences."""
    system, entity, kind = group["system"], group["entity"], group["kind"]
    field, state, count = field_name(group.get("field") or ""), group["state"], group["count"]
    where = system_name(system)
    many = things(entity, count)
    what = f"{field} of {many}" if field else many
    reason = group.get("reason") or ""
    if kind in BREAKS:
        return {
            "paid_amount_mismatch": f"Check {many} marked paid in {where} whose payments add up "
            "to a different amount",
            "order_without_invoice": f"Raise an invoice in {where} for {many}",
            "payment_without_invoice": f"Apply {many} in {where} to the invoice they pay",
            "amount_mismatch": f"Check {many} whose invoices add up to a different amount",
            "currency_mismatch": f"Check {many} paid in another currency than invoiced",
        }[kind]
    if state == "fixed":
        return f"Corrected {what} in {where}; read back and verified"
    if state == "resolved":
        return f"{what[0].upper()}{what[1:]} now agree in {where} (changed at the source)"
    if state == "queued":
        return f"Correcting {what} in {where}: {reason or 'written, verified on the next run'}"
    if state == "held":
        return f"Correction of {what} in {where} held: {reason or 'waiting for approval'}"
    if state == "failed":
        return f"Correction of {what} in {where} failed, retried next run: {reason}"
    if state == "dead":
        return (
            f"Correction of {what} in {where} gave up: {reason} "
            "(tieout reverse-etl replay tries again)"
        )
    if state == "waived":
        return f"{what[0].upper()}{what[1:]} in {where} waived"
    master = system_name((masters or {}).get(entity, ""))
    if kind == "missing_in_system":
        return f"Create {many} in {where}"
    if kind == "extra_in_system":
        return f"Review {many} that only {where} has: add them to {master} or remove them"
    if kind == "duplicate_key":
        return f"Merge {things(entity, count).replace(' ', f' duplicate {where} ', 1)}"
    if kind == "null_key":
        return f"Give {many} in {where} their key"
    return f"Correct {what} in {where} by hand ({reason})" if reason else f"Correct {what}"
