"""The comparison SQL written from entities.yml: tolerance rules as normalising expressions,
composite keys as tuples, and a clear error for a plan that cannot work (no database needed)."""

from __future__ import annotations

import re

import pytest

from tieout.config import Entity, EntityField, load_config
from tieout.reconcile.compare import (
    Plan,
    PlanError,
    differs,
    findings_sql,
    impact_mode,
    literal,
    normalized,
)


def field(type_: str, **tolerance) -> EntityField:
    return EntityField.model_validate(
        {"type": type_, "source_of_truth": "a", "names": {"a": "x"}, "tolerance": tolerance}
    )


@pytest.mark.parametrize(
    ("spec", "column_type", "expected"),
    [
        (
            field("text", case_insensitive=True),
            "text",
            "nullif(lower(btrim(cast(v as text), E' \\t\\r\\n')), '')",
        ),
        (
            field("text", collapse_whitespace=True, trim=False),
            "text",
            "nullif(btrim(regexp_replace(cast(v as text), '\\s+', ' ', 'g'), E' \\t\\r\\n'), '')",
        ),
        (
            field("text", digits_only=True, trim=False),
            "text",
            "nullif(regexp_replace(cast(v as text), '[^0-9]', '', 'g'), '')",
        ),
        (field("text", trim=False, null_equals_empty=False), "text", "cast(v as text)"),
        (field("money"), "numeric", "round(cast(v as numeric), recon.minor_units(cur))"),
        (
            field("money"),
            "text",
            "round(cast(nullif(btrim(v), '') as numeric), recon.minor_units(cur))",
        ),
        (field("money", money_minor_units=False), "numeric", "cast(v as numeric)"),
        (
            field("timestamp", timestamp_precision="minute"),
            "timestamp with time zone",
            "date_trunc('minute', v at time zone 'UTC')",
        ),
        (
            field("timestamp"),
            "timestamp without time zone",
            "date_trunc('second', (v at time zone 'UTC') at time zone 'UTC')",
        ),
        (
            field("timestamp", timestamp_precision="day", timezone="Europe/Berlin"),
            "timestamp with time zone",
            "cast(v at time zone 'Europe/Berlin' as date)",
        ),
        (
            field("date", timezone="Europe/Berlin"),
            "timestamp with time zone",
            "cast(v at time zone 'Europe/Berlin' as date)",
        ),
        (field("date"), "date", "v"),
        (field("boolean"), "text", "cast(nullif(btrim(v), '') as boolean)"),
    ],
)
def test_tolerance_rules_become_sql(spec, column_type, expected):
    assert normalized("v", spec, column_type, "cur") == expected


def test_money_without_a_currency_rounds_to_cents():
    assert normalized("v", field("money"), "numeric", None) == "round(cast(v as numeric), 2)"


def test_absolute_tolerance_and_nulls():
    assert differs("a", "b", field("money", absolute=0.05)) == (
        "coalesce(abs(a - b) > 0.05, (a is null) <> (b is null))"
    )
    assert differs("a", "b", field("text")) == "a is distinct from b"


def test_literal_escapes_quotes():
    assert literal("o'clock") == "'o''clock'"


ENTITY = Entity.model_validate(
    {
        "table": "canonical.order_lines",
        "key": "order_id, line_number",
        "master": "shop",
        "money_field": "price",
        "currency_field": "currency",
        "systems": {"shop": {"stream": "o", "key": "id"}, "erp": {"stream": "s", "key": "n"}},
        "fields": {
            "price": {
                "type": "money",
                "source_of_truth": "shop",
                "names": {"shop": "p", "erp": "p"},
            },
            "currency": {
                "type": "currency",
                "source_of_truth": "shop",
                "names": {"shop": "c", "erp": "c"},
            },
            "note": {"type": "text", "source_of_truth": "shop", "names": {"shop": "n", "erp": "n"}},
            "sku": {"type": "text", "source_of_truth": "shop", "names": {"shop": "s"}},
        },
    }
)
CANONICAL = {
    "order_id": "text",
    "line_number": "integer",
    "price": "numeric",
    "currency": "text",
    "sku": "text",
    "note": "text",
}
BY_SYSTEM = {
    "order_id": "text",
    "line_number": "integer",
    "system": "text",
    "system_key": "text",
    "duplicate_rank": "bigint",
    "price": "text",
    "currency": "text",
}


def plan(canonical=CANONICAL, by_system=BY_SYSTEM) -> Plan:
    return Plan("order_line", ENTITY, "canonical.order_lines", "x.by_system", canonical, by_system)


def test_composite_keys_are_compared_as_tuples():
    sql = findings_sql(plan())
    assert (
        "(canonical.order_id, canonical.line_number) = (copies.order_id, copies.line_number)" in sql
    )
    assert (
        "(copies.order_id, copies.line_number) = (canonical.order_id, canonical.line_number)" in sql
    )
    joins = [line for line in sql.splitlines() if " = " in line and "order_id" in line]
    assert joins and not any("||" in line or "concat" in line for line in joins)
    assert "jsonb_build_object('order_id', canonical.order_id, 'line_number'," in sql


def test_fields_compared_and_not_compared():
    p = plan()
    assert [f.name for f in p.fields] == ["price", "currency"]
    assert p.fields[0].systems == ("erp",)
    assert p.skipped_fields == ["note"]
    assert p.key == ("order_id", "line_number")


def test_missing_from_canonical_ids_when_present_else_anti_join():
    assert "not exists (" in findings_sql(plan())
    with_ids = findings_sql(plan({**CANONICAL, "shop_id": "text", "erp_id": "text"}))
    assert "cross join lateral (values ('shop', canonical.shop_id), ('erp', canonical.erp_id))" in (
        with_ids
    )
    assert "and copies.system = held.system" not in with_ids


def test_stored_types_differ_so_raw_test_casts_to_text():
    sql = findings_sql(plan())
    assert "cast(canonical.price as text) is distinct from cast(copies.price as text)" in sql
    assert "canonical.currency is distinct from copies.currency" in sql


def test_money_impact_modes():
    assert impact_mode("price", ENTITY.fields["price"], ENTITY) == "difference"
    assert impact_mode("currency", ENTITY.fields["currency"], ENTITY) == "amount"
    assert impact_mode("note", ENTITY.fields["note"], ENTITY) == "none"


@pytest.mark.parametrize(
    ("canonical", "by_system", "message"),
    [
        ({"order_id": "text"}, BY_SYSTEM, "has no key column 'line_number'"),
        (CANONICAL, {k: v for k, v in BY_SYSTEM.items() if k != "system_key"}, "system_key"),
    ],
)
def test_plan_errors_name_the_problem(canonical, by_system, message):
    with pytest.raises(PlanError, match=re.escape(message)):
        plan(canonical, by_system)


def test_bad_relation_name():
    with pytest.raises(PlanError, match="schema.table"):
        Plan("x", ENTITY, "canonical.order_lines; drop", "x.y", CANONICAL, BY_SYSTEM)


def test_sql_for_every_shipped_entity():
    for name, entity in load_config().entities.items():
        columns = {"system": "text", "system_key": "text", "duplicate_rank": "bigint"}
        fields = {f: "text" for f in entity.fields}
        key = {entity.key: "text"}
        sql = findings_sql(
            Plan(
                name,
                entity,
                entity.table,
                "i.by_system",
                {**key, **fields},
                {**key, **fields, **columns},
            )
        )
        assert sql.startswith("insert into recon_current")
        assert f"from {entity.table}" in sql
