"""Signature checks, both schemes: valid, forged, wrong secret, expired, future, replayed id
(in the receiver tests), header missing, several v1 signatures while a secret rotates."""

from __future__ import annotations

import json

import pytest

from tieout.config import Webhook
from tieout.webhooks import verify
from tieout.webhooks.verify import Rejected, digest, stripe_header

SECRET = "whsec_" + "a1" * 16
OTHER = "whsec_" + "b2" * 16
NOW = 1_790_000_000
STRIPE = Webhook(scheme="stripe")
HEX = Webhook(scheme="hex", hex_prefix="sha256=", timestamp_path="created")


def body(event_id: str = "evt_1", created: int | str = NOW, **extra: object) -> bytes:
    document = {
        "id": event_id,
        "type": "invoice.paid",
        "created": created,
        "data": {"object": {"id": "in_9"}},
        **extra,
    }
    return json.dumps(document).encode()


def stripe(raw: bytes, secret: str = SECRET, at: int = NOW, extra: tuple[str, ...] = ()) -> dict:
    return {"stripe-signature": stripe_header(secret, raw, at, extra)}


def hex_headers(raw: bytes, secret: str = SECRET) -> dict:
    return {"x-signature-256": "sha256=" + digest(secret, raw)}


def reason(spec: Webhook, raw: bytes, headers: dict, secrets: list[str] | None = None) -> str:
    with pytest.raises(Rejected) as caught:
        verify.verify(spec, secrets or [SECRET], raw, headers, now=NOW)
    assert SECRET not in str(caught.value) and raw.decode() not in str(caught.value)
    return caught.value.reason


def test_stripe_valid() -> None:
    raw = body()
    event = verify.verify(STRIPE, [SECRET], raw, stripe(raw), now=NOW)
    assert (event.event_id, event.event_type, event.object_id) == ("evt_1", "invoice.paid", "in_9")
    assert event.signed_at == NOW


def test_hex_valid() -> None:
    raw = body()
    event = verify.verify(HEX, [SECRET], raw, hex_headers(raw), now=NOW)
    assert event.event_id == "evt_1" and event.signed_at == NOW


def test_hex_without_prefix_and_custom_header() -> None:
    spec = Webhook(scheme="hex", timestamp_path="created", signature_header="X-Hook-Sig")
    raw = body()
    event = verify.verify(spec, [SECRET], raw, {"x-hook-sig": digest(SECRET, raw)}, now=NOW)
    assert event.event_id == "evt_1"


@pytest.mark.parametrize(
    ("case", "spec", "make", "expected"),
    [
        # forged: the body changed after signing
        ("stripe forged body", STRIPE, lambda r: (r + b" ", stripe(r)), "bad_signature"),
        (
            "hex forged body",
            HEX,
            lambda r: (r.replace(b"in_9", b"in_8"), hex_headers(r)),
            "bad_signature",
        ),
        ("stripe wrong secret", STRIPE, lambda r: (r, stripe(r, OTHER)), "bad_signature"),
        ("hex wrong secret", HEX, lambda r: (r, hex_headers(r, OTHER)), "bad_signature"),
        ("stripe expired", STRIPE, lambda r: (r, stripe(r, at=NOW - 301)), "expired"),
        ("stripe future", STRIPE, lambda r: (r, stripe(r, at=NOW + 301)), "future"),
        (
            "hex expired",
            HEX,
            lambda r: (body(created=NOW - 301), hex_headers(body(created=NOW - 301))),
            "expired",
        ),
        (
            "hex future",
            HEX,
            lambda r: (body(created=NOW + 301), hex_headers(body(created=NOW + 301))),
            "future",
        ),
        ("stripe header missing", STRIPE, lambda r: (r, {}), "missing_header"),
        ("hex header missing", HEX, lambda r: (r, {}), "missing_header"),
        (
            "stripe header without t",
            STRIPE,
            lambda r: (r, {"stripe-signature": "v1=" + digest(SECRET, r)}),
            "bad_header",
        ),
        (
            "stripe header without v1",
            STRIPE,
            lambda r: (r, {"stripe-signature": f"t={NOW}"}),
            "bad_header",
        ),
        (
            "stripe header t not a number",
            STRIPE,
            lambda r: (r, {"stripe-signature": "t=soon,v1=00"}),
            "bad_header",
        ),
        (
            "stripe signed with a time it does not carry",
            STRIPE,
            lambda r: (
                r,
                {
                    "stripe-signature": stripe(r, at=NOW - 5)["stripe-signature"].replace(
                        f"t={NOW - 5}", f"t={NOW}"
                    )
                },
            ),
            "bad_signature",
        ),
        (
            "hex missing prefix",
            HEX,
            lambda r: (r, {"x-signature-256": digest(SECRET, r)}),
            "bad_header",
        ),
        (
            "hex timestamp not a number",
            HEX,
            lambda r: (body(created="yesterday"), hex_headers(body(created="yesterday"))),
            "malformed",
        ),
        ("stripe body not JSON", STRIPE, lambda r: (b"not json", stripe(b"not json")), "malformed"),
        ("stripe body a list", STRIPE, lambda r: (b"[1]", stripe(b"[1]")), "malformed"),
        (
            "stripe body without id",
            STRIPE,
            lambda r: (b'{"type": "x"}', stripe(b'{"type": "x"}')),
            "malformed",
        ),
        (
            "stripe body without type",
            STRIPE,
            lambda r: (b'{"id": "evt_2"}', stripe(b'{"id": "evt_2"}')),
            "malformed",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_refused(case: str, spec: Webhook, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    raw, headers = make(body())
    assert reason(spec, raw, headers) == expected, case


def test_no_secret_configured() -> None:
    raw = body()
    with pytest.raises(Rejected) as caught:
        verify.verify(STRIPE, [], raw, stripe(raw), now=NOW)
    assert caught.value.reason == "no_secret"


def test_stripe_rotation_any_v1_of_several_matches() -> None:
    """While a secret rotates the sender signs with both: one matching v1 is enough."""
    raw = body()
    old_signature = digest(OTHER, f"{NOW}.".encode() + raw)
    new_signature = digest(SECRET, f"{NOW}.".encode() + raw)
    headers = {"stripe-signature": f"t={NOW},v1={old_signature},v1={new_signature}"}
    assert verify.verify(STRIPE, [SECRET], raw, headers, now=NOW).event_id == "evt_1"
    only_old = {"stripe-signature": f"t={NOW},v1={old_signature},v1={'0' * 64}"}
    assert reason(STRIPE, raw, only_old) == "bad_signature"


def test_receiver_with_two_secrets_accepts_either() -> None:
    raw = body()
    assert verify.verify(STRIPE, [OTHER, SECRET], raw, stripe(raw), now=NOW).event_id == "evt_1"
    assert verify.verify(STRIPE, [OTHER, SECRET], raw, stripe(raw, OTHER), now=NOW)


def test_within_tolerance_is_accepted_at_both_edges() -> None:
    raw = body()
    assert verify.verify(STRIPE, [SECRET], raw, stripe(raw, at=NOW - 300), now=NOW)
    assert verify.verify(STRIPE, [SECRET], raw, stripe(raw, at=NOW + 300), now=NOW)


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = verify.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(verify.hmac, "compare_digest", spy)
    raw = body()
    verify.verify(STRIPE, [SECRET], raw, stripe(raw), now=NOW)
    verify.verify(HEX, [SECRET], raw, hex_headers(raw), now=NOW)
    assert len(calls) == 2
