"""Canonical values into a target's vocabulary and API shape, and back out of its records.

Pure functions of the target config: no database, no network; must never guess a value.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from tieout.config import Target

BERLIN = ZoneInfo("Europe/Berlin")
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3}


class MappingError(ValueError):
    """A canonical value the target cannot take (unknown vocabulary, unreadable number)."""


def target_value(target: Target, field: str, canonical: str, currency: str | None = None) -> Any:
    """The value `target` must hold for `field` when the canonical record says `canonical`."""
    value: Any = canonical
    table = target.values.get(field)
    if table is not None:
        if canonical not in table:
            raise MappingError(f"{target.system} has no word for {field} {canonical!r}")
        value = table[canonical]
    conversion = target.convert.get(field)
    if conversion == "lower":
        value = str(value).lower()
    elif conversion == "upper":
        value = str(value).upper()
    elif conversion == "minor_units":
        digits = MINOR_UNITS.get((currency or "").upper(), 2)
        try:
            value = int((Decimal(str(value)) * (10**digits)).to_integral_exact())
        except (InvalidOperation, ArithmeticError):
            raise MappingError(f"{field} {canonical!r} is not an amount") from None
    elif conversion == "berlin_midnight_epoch":
        try:
            day = datetime.fromisoformat(str(value)[:10]).replace(tzinfo=BERLIN)
        except ValueError:
            raise MappingError(f"{field} {canonical!r} is not a date") from None
        value = int(day.timestamp())
    return value


def field_paths(body: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Canonical field -> its path in the target's body (`{properties: {zip: postcode}}`)."""
    paths: dict[str, tuple[str, ...]] = {}
    for name, leaf in body.items():
        if isinstance(leaf, dict):
            paths.update(field_paths(leaf, (*prefix, name)))
        else:
            paths[str(leaf)] = (*prefix, name)
    return paths


def request_body(target: Target, values: dict[str, Any]) -> dict[str, Any]:
    """The body that sets exactly `values` (canonical field -> target value), nothing else."""
    body: dict[str, Any] = {}
    paths = field_paths(target.body)
    for field in sorted(values):
        if field not in paths:
            raise MappingError(f"{target.system} body has no place for {field!r}")
        node = body
        *parents, leaf = paths[field]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[field]
    return body


def held_value(target: Target, record: dict[str, Any], field: str) -> Any:
    """What a record read back from the target holds for `field` (None when absent)."""
    node: Any = record
    for part in field_paths(target.body)[field]:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def comparable(field: str, value: Any) -> str:
    """The value as the tolerance rules see it: trimmed, one space, case-folded; phones digits."""
    text = re.sub(r"\s+", " ", str(value if value is not None else "")).strip().casefold()
    if field == "phone":
        return re.sub(r"\D", "", text)
    return text


def holds(target: Target, record: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The fields of `values` the record does not hold (empty: the write is in place)."""
    return [
        field
        for field, want in sorted(values.items())
        if comparable(field, held_value(target, record, field)) != comparable(field, want)
    ]


def record_path(template: str, record_key: str) -> str:
    """`/v1/customers/{id}` with the record's key, percent-encoded, as its one path segment.

    Every reserved character is encoded (`/`, `?`, `#`, `%`, `\\`), so a key can never leave
    its segment; `.` and `..` stay what they are in a URL and are refused.
    """
    if record_key in ("", ".", ".."):
        raise MappingError(f"record key {record_key!r} cannot be a path segment of {template}")
    placeholder = re.search(r"\{[^}]+\}", template)
    if placeholder is None:
        raise MappingError(f"path {template} has no {{placeholder}} for the record key")
    segment = quote(record_key, safe="")
    return template[: placeholder.start()] + segment + template[placeholder.end() :]


def idempotency_key(entity: str, system: str, record_key: str, values: dict[str, Any]) -> str:
    """Stable for one intent: entity, target, record, fields and a hash of the target values."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
    identity = json.dumps([entity, system, record_key, sorted(values), digest])
    return "tieout-" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def body_text(body: dict[str, Any]) -> str:
    """One serialization for a body, so a resend is byte-identical."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
