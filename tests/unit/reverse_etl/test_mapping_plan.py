"""Mapping canonical values into each target's shape, idempotency key stability, brake math."""

from __future__ import annotations

import pytest

from tieout.config import SafetyBrake, Target, load_config
from tieout.reverse_etl import mapping, plan


def target(system: str, entity: str) -> Target:
    for found in load_config().reverse_etl.targets:
        if (found.system, found.entity) == (system, entity):
            return found
    raise LookupError(system)


def test_values_follow_each_targets_vocabulary() -> None:
    assert mapping.target_value(target("crm", "customer"), "country", "GB") == "United Kingdom"
    assert mapping.target_value(target("erp", "invoice"), "status", "paid") == "PAID"
    invoice = target("billing", "invoice")
    assert mapping.target_value(invoice, "amount", "123.40", "EUR") == 12340
    assert mapping.target_value(invoice, "amount", "1234", "JPY") == 1234
    assert mapping.target_value(invoice, "currency", "EUR") == "eur"
    # 00:00 Europe/Berlin on 2026-03-02 is 23:00 UTC the day before
    assert mapping.target_value(invoice, "due_at", "2026-03-02") == 1772406000
    with pytest.raises(mapping.MappingError, match="no word for country 'XX'"):
        mapping.target_value(target("crm", "customer"), "country", "XX")


def test_body_sets_only_the_fields_written() -> None:
    crm = target("crm", "customer")
    assert mapping.request_body(crm, {"city": "Wien", "postcode": "1010"}) == {
        "properties": {"city": "Wien", "zip": "1010"}
    }
    shop = target("shop", "customer")
    assert mapping.request_body(shop, {"street": "Ring 1"}) == {
        "customer": {"default_address": {"address1": "Ring 1"}}
    }
    record = {"customer": {"default_address": {"address1": " ring  1 "}}}
    assert mapping.holds(shop, record, {"street": "Ring 1"}) == []
    assert mapping.holds(shop, record, {"street": "Ring 2"}) == ["street"]
    assert mapping.record_path(crm.path, "10234") == "/crm/v3/objects/contacts/10234"


def test_idempotency_key_is_stable_and_specific() -> None:
    one = mapping.idempotency_key("customer", "crm", "1", {"city": "Wien", "zip": "1010"})
    assert one == mapping.idempotency_key("customer", "crm", "1", {"zip": "1010", "city": "Wien"})
    assert one != mapping.idempotency_key("customer", "crm", "1", {"city": "Graz", "zip": "1010"})
    assert one != mapping.idempotency_key("customer", "crm", "2", {"city": "Wien", "zip": "1010"})
    assert one != mapping.idempotency_key("customer", "shop", "1", {"city": "Wien", "zip": "1010"})
    assert mapping.body_text({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


def write(record: str) -> plan.Write:
    return plan.Write(
        "crm", "customer", record, None, [1], {}, {"city": "x"}, "PATCH", "/", "", record
    )


@pytest.mark.parametrize(
    ("records", "total", "stopped"),
    [
        (20, 50, False),  # at min_rows: never stopped
        (21, 200, False),  # 10.5 % of 200
        (21, 100, True),  # 21 % of 100 > 20 %
        (41, 200, True),
        (30, None, True),  # unknown total: treated as all
    ],
)
def test_brake(records: int, total: int | None, stopped: bool) -> None:
    writes = [write(str(n)) for n in range(records)] + [write("0")]  # one record counted once
    problems = plan.brake_problems(
        writes, {("crm", "customer"): total}, [target("crm", "customer")], SafetyBrake()
    )
    assert bool(problems) is stopped
    if stopped:
        assert problems[0].startswith(f"crm customer: {records} of")
        assert "safety brake of 20%" in problems[0]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("10234", "/crm/v3/objects/contacts/10234"),
        ("a\\q", "/crm/v3/objects/contacts/a%5Cq"),
        ("x?y#z", "/crm/v3/objects/contacts/x%3Fy%23z"),
        ("a/../b", "/crm/v3/objects/contacts/a%2F..%2Fb"),
        ("100%", "/crm/v3/objects/contacts/100%25"),
        ("Müller & Co", "/crm/v3/objects/contacts/M%C3%BCller%20%26%20Co"),
    ],
)
def test_record_key_is_one_percent_encoded_segment(key: str, path: str) -> None:
    assert mapping.record_path(target("crm", "customer").path, key) == path


@pytest.mark.parametrize("key", [".", "..", ""])
def test_record_key_that_is_a_dot_segment_is_refused(key: str) -> None:
    with pytest.raises(mapping.MappingError, match="cannot be a path segment"):
        mapping.record_path(target("crm", "customer").path, key)
