"""Fault knobs of one sandbox service: errors, 429s, latency, timeouts, malformed records,
a renamed field, dropped writes. They only distort answers; they never change stored data."""

from __future__ import annotations

import copy
import json
import random
import time
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tieout_sandbox import datadir

ERROR_STATUSES = (500, 502, 503)


@dataclass
class Knobs:
    """Every knob is off by default, except billing's real rate limit (see `default_knobs`)."""

    outage_status: int = 0  # 0 = up; 500-599: every API request (token too) answered with it
    error_rate: float = 0.0  # share of API requests answered 500, 502 or 503
    rate_429: float = 0.0  # share of API requests answered 429 with Retry-After
    retry_after_seconds: int = 1
    latency_ms: int = 0  # added to every API request
    timeout_rate: float = 0.0  # share of API requests that hang `timeout_seconds`, then 504
    timeout_seconds: float = 30.0
    broken_json_rate: float = 0.0  # share of list pages served as truncated JSON
    wrong_type_rate: float = 0.0  # share of records (stable per record) with a retyped field
    missing_key_rate: float = 0.0  # share of records (stable per record) without their id
    rename_field: dict[str, str] = field(default_factory=dict)  # {"dotted.path": "new_name"}
    drop_write_rate: float = 0.0  # share of writes answered as applied but not applied
    rate_limit_per_second: float = 0.0  # 0 = unlimited; above it: 429 with Retry-After
    token_ttl_seconds: int = 1800  # crm OAuth access token lifetime
    webhook_loss: float = 0.0  # billing: share of webhook events never sent
    webhook_duplicate: float = 0.0  # billing: share of webhook events sent twice
    webhook_delay_rate: float = 0.0  # billing: share of webhook events held back ...
    webhook_delay_ms: int = 5000  # ... for this long
    webhook_bad_signature: float = 0.0  # billing: share of webhook events signed wrongly
    seed: int = 0  # seeds the random choices of the knobs above


KNOB_NAMES = {item.name for item in fields(Knobs)}
SHARES = (
    "error_rate",
    "rate_429",
    "timeout_rate",
    "broken_json_rate",
    "wrong_type_rate",
    "missing_key_rate",
    "drop_write_rate",
    "webhook_loss",
    "webhook_duplicate",
    "webhook_delay_rate",
    "webhook_bad_signature",
)
# the other numeric knobs: (whole numbers only, lowest, highest)
RANGES: dict[str, tuple[bool, int, int]] = {
    "retry_after_seconds": (True, 0, 3600),
    "outage_status": (True, 0, 599),
    "latency_ms": (True, 0, 600_000),
    "timeout_seconds": (False, 0, 3600),
    "rate_limit_per_second": (False, 0, 1_000_000),
    "token_ttl_seconds": (True, 1, 86_400),
    "webhook_delay_ms": (True, 0, 600_000),
    "seed": (True, 0, 2**63 - 1),
}


def knob_problem(name: str, value: Any) -> str | None:
    """What is wrong with one knob's value, or None (bools, NaN and infinities are refused)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name in SHARES:
        if not number or not 0.0 <= float(value) <= 1.0:
            return f"{name} must be a number between 0 and 1, got {value!r}"
    elif name in RANGES:
        whole, low, high = RANGES[name]
        kind = "a whole number" if whole else "a number"
        if not number or (whole and not isinstance(value, int)) or not low <= value <= high:
            return f"{name} must be {kind} between {low} and {high}, got {value!r}"
    if name == "outage_status" and value != 0 and not 500 <= value <= 599:
        return f"outage_status must be 0 (no outage) or a 5xx status, got {value!r}"
    if name == "rename_field" and not isinstance(value, dict):
        return "rename_field must map a dotted field path to a new name"
    return None


def default_knobs(system: str) -> Knobs:
    return Knobs(rate_limit_per_second=100.0) if system == "billing" else Knobs()


def knobs_from_dict(system: str, values: dict[str, Any], base: Knobs | None = None) -> Knobs:
    """`base` (or the defaults) updated with `values`; unknown names raise ValueError."""
    unknown = set(values) - KNOB_NAMES
    if unknown:
        raise ValueError(f"unknown fault knobs: {sorted(unknown)}; known: {sorted(KNOB_NAMES)}")
    merged = asdict(base or default_knobs(system))
    merged.update(values)
    knobs = Knobs(**merged)
    problems = [p for name, value in asdict(knobs).items() if (p := knob_problem(name, value))]
    if problems:
        raise ValueError("; ".join(problems))
    return knobs


def load_knobs(directory: Path, system: str) -> Knobs:
    path = datadir.faults_path(directory, system)
    if not path.exists():
        return default_knobs(system)
    return knobs_from_dict(system, datadir.read_json(path))


def save_knobs(directory: Path, system: str, knobs: Knobs) -> None:
    datadir.write_json(datadir.faults_path(directory, system), asdict(knobs))


class FaultState:
    """The live knobs of one running service plus the state their decisions need."""

    def __init__(self, system: str, knobs: Knobs) -> None:
        self.system = system
        self.set(knobs)

    def set(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.rng = random.Random(knobs.seed)
        self.window_start = time.monotonic()
        self.window_count = 0

    def hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def over_rate_limit(self) -> bool:
        """Fixed one-second window: more than `rate_limit_per_second` requests in it → True."""
        limit = self.knobs.rate_limit_per_second
        if limit <= 0:
            return False
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            self.window_start, self.window_count = now, 0
        self.window_count += 1
        return self.window_count > limit

    def error_status(self) -> int:
        return self.rng.choice(ERROR_STATUSES)

    def drop_write(self) -> bool:
        return self.hit(self.knobs.drop_write_rate)

    def distort_records(self, docs: list[str], id_field: str, wrong_type_path: str) -> list[str]:
        """Apply rename, wrong-type and missing-key knobs to serialized records."""
        knobs = self.knobs
        if not (knobs.rename_field or knobs.wrong_type_rate or knobs.missing_key_rate):
            return docs
        out = []
        for text in docs:
            record = json.loads(text)
            key = str(record.get(id_field))
            if stable_hit(knobs.seed, "wrong_type", key, knobs.wrong_type_rate):
                retype(record, wrong_type_path)
            if stable_hit(knobs.seed, "missing_key", key, knobs.missing_key_rate):
                record.pop(id_field, None)
            for path, new_name in knobs.rename_field.items():
                rename(record, path, new_name)
            out.append(json.dumps(record, separators=(",", ":")))
        return out

    def break_json(self, body: str) -> str:
        """Truncate a page body so it no longer parses (when the knob fires)."""
        if self.hit(self.knobs.broken_json_rate):
            return body[: max(1, len(body) // 2)]
        return body


def stable_hit(seed: int, knob: str, key: str, rate: float) -> bool:
    """The same record gets the same decision on every read: malformed data stays malformed."""
    if rate <= 0:
        return False
    return zlib.crc32(f"{seed}:{knob}:{key}".encode()) % 10_000 < rate * 10_000


def retype(record: dict[str, Any], path: str) -> None:
    parent, name = walk(record, path)
    if parent is None or name not in parent:
        return
    value = parent[name]
    if isinstance(value, bool):
        parent[name] = "yes" if value else "no"
    elif isinstance(value, int | float):
        parent[name] = f"{value}"
    elif isinstance(value, str):
        parent[name] = zlib.crc32(value.encode()) % 100_000
    else:
        parent[name] = 0


def rename(record: dict[str, Any], path: str, new_name: str) -> None:
    parent, name = walk(record, path)
    if parent is not None and name in parent:
        parent[new_name] = parent.pop(name)


def walk(record: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    *parents, name = path.split(".")
    node: Any = record
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), name


def snapshot(knobs: Knobs) -> dict[str, Any]:
    return copy.deepcopy(asdict(knobs))
