"""Signature, age and shape checks of one webhook delivery, before anything is recorded.

Pure functions over the raw body and headers. They must never log or return the body or the
secret, and every signature comparison is constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from tieout.config import Webhook

# rejection reasons, as counted at /metrics and stored in ops.webhook_events.reason
MISSING_HEADER = "missing_header"
BAD_HEADER = "bad_header"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
FUTURE = "future"
MALFORMED = "malformed"
REPLAYED = "replayed"
UNKNOWN_SOURCE = "unknown_source"
NO_SECRET = "no_secret"
REASONS = (
    MISSING_HEADER,
    BAD_HEADER,
    BAD_SIGNATURE,
    EXPIRED,
    FUTURE,
    MALFORMED,
    REPLAYED,
    UNKNOWN_SOURCE,
    NO_SECRET,
)


class Rejected(Exception):
    """A delivery refused for `reason`; `detail` is safe to log (no body, no secret)."""

    def __init__(self, reason: str, detail: str, event_id: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_id = event_id


@dataclass(frozen=True)
class Event:
    """What tieout keeps of an accepted delivery: who, what, when; never the body."""

    event_id: str
    event_type: str
    object_id: str | None
    signed_at: float


def digest(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def stripe_header(secret: str, body: bytes, timestamp: int, extra: tuple[str, ...] = ()) -> str:
    """`t=<ts>,v1=<hex>` as Stripe sends it (senders and tests use this; `extra` adds v1s)."""
    signature = digest(secret, f"{timestamp}.".encode() + body)
    return ",".join([f"t={timestamp}", f"v1={signature}", *(f"v1={s}" for s in extra)])


def parse_stripe_header(value: str) -> tuple[int, list[str]]:
    """(timestamp, every v1 signature); several v1 values appear while a secret rotates."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, text = item.strip().partition("=")
        if not sep:
            raise Rejected(BAD_HEADER, "signature header items must be key=value")
        if key == "t":
            if not text.isdigit():
                raise Rejected(BAD_HEADER, "signature header t= is not a unix time")
            timestamp = int(text)
        elif key == "v1":
            signatures.append(text)
    if timestamp is None:
        raise Rejected(BAD_HEADER, "signature header has no t=")
    if not signatures:
        raise Rejected(BAD_HEADER, "signature header has no v1=")
    return timestamp, signatures


def check_age(signed_at: float, tolerance_s: int, now: float) -> None:
    if signed_at < now - tolerance_s:
        raise Rejected(EXPIRED, f"signed {now - signed_at:.0f} s ago, limit {tolerance_s} s")
    if signed_at > now + tolerance_s:
        raise Rejected(FUTURE, f"signed {signed_at - now:.0f} s ahead, limit {tolerance_s} s")


def lookup(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def verify(
    spec: Webhook,
    secrets: list[str],
    body: bytes,
    headers: dict[str, str],
    now: float | None = None,
) -> Event:
    """The event a delivery carries, or Rejected. `headers` keys are lower-case.

    `secrets` are every secret currently valid for the source (one, or two while rotating).
    Order: signature first, so nothing about an unsigned body is believed, then age, then shape.
    """
    now = time.time() if now is None else now
    if not secrets:
        raise Rejected(NO_SECRET, "no webhook secret is configured for this source")
    header = headers.get(spec.header.lower())
    if not header:
        raise Rejected(MISSING_HEADER, f"no {spec.header} header")
    if spec.scheme == "stripe":
        timestamp, offered = parse_stripe_header(header)
        payload = f"{timestamp}.".encode() + body
        expected = [digest(secret, payload) for secret in secrets]
        if not any_match(expected, offered):
            raise Rejected(BAD_SIGNATURE, "no v1 signature matches")
        check_age(timestamp, spec.tolerance_s, now)
    else:
        offered_hex = header.strip()
        if spec.hex_prefix:
            if not offered_hex.startswith(spec.hex_prefix):
                raise Rejected(BAD_HEADER, f"signature does not start with {spec.hex_prefix!r}")
            offered_hex = offered_hex[len(spec.hex_prefix) :]
        if not any_match([digest(secret, body) for secret in secrets], [offered_hex]):
            raise Rejected(BAD_SIGNATURE, "the digest does not match")
    document = parse_body(body)
    event_id = lookup(document, spec.id_path)
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise Rejected(MALFORMED, f"{spec.id_path}: expected a non-empty string id")
    event_type = lookup(document, spec.type_path)
    if not isinstance(event_type, str) or not event_type:
        raise Rejected(MALFORMED, f"{spec.type_path}: expected an event type", event_id)
    if spec.scheme == "hex":
        assert spec.timestamp_path is not None  # the config requires it for hex
        stamp = lookup(document, spec.timestamp_path)
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise Rejected(MALFORMED, f"{spec.timestamp_path}: expected a unix time", event_id)
        check_age(float(stamp), spec.tolerance_s, now)
        signed_at = float(stamp)
    else:
        signed_at = float(timestamp)
    object_id = lookup(document, spec.object_id_path) if spec.object_id_path else None
    return Event(
        event_id=event_id,
        event_type=event_type[:255],
        object_id=str(object_id)[:255] if object_id is not None else None,
        signed_at=signed_at,
    )


def any_match(expected: list[str], offered: list[str]) -> bool:
    """Constant-time per pair; every pair is compared, so timing tells nothing about which."""
    found = False
    for want in expected:
        for got in offered:
            found |= hmac.compare_digest(want.encode(), got.strip().encode())
    return found


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected(MALFORMED, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise Rejected(MALFORMED, "the body is not a JSON object")
    return document
