"""A full dbt build over hand-written raw records: canonical counts, identity resolution with its
rules, duplicates and unmatched records kept visible, source of truth per field, units and time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_build_succeeds_and_records_the_stage(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    assert built["failed"] == []
    assert built["by_type"]["unit_test"] == {"success": 2} or built["by_type"]["unit_test"] == {
        "pass": 2
    }
    rows = sql("select status, figures from ops.stage_runs where stage = 'transform'")
    assert rows and rows[0][0] == "success"
    assert rows[0][1]["canonical_rows"]["customers"] == 5


def test_every_relation_dbt_built_belongs_to_the_transformer(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    owners = sql(
        """select n.nspname, pg_get_userbyid(c.relowner), count(*)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('staging', 'intermediate', 'canonical', 'finance')
             and c.relkind in ('r', 'v', 'm')
           group by 1, 2 order by 1, 2"""
    )
    assert {schema for schema, _, _ in owners} == {
        "staging",
        "intermediate",
        "canonical",
        "finance",
    }
    assert {owner for _, owner, _ in owners} == {"tieout_transformer"}


def test_canonical_counts_are_one_row_per_real_world_entity(built: dict[str, Any]) -> None:
    assert built["canonical_rows"] == {
        "customers": 5,
        "products": 2,
        "orders": 3,
        "order_lines": 3,
        "invoices": 3,
        "payments": 3,
    }


def test_layers_land_in_unprefixed_schemas(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    rows = dict(
        sql(
            "select table_name, table_schema from information_schema.tables "
            "where table_name in ('stg_crm__contacts', 'currencies', 'int_customers_crosswalk', "
            "'customers', 'customers_history', 'receivables_aging')"
        )
    )
    assert rows == {
        "stg_crm__contacts": "staging",
        "currencies": "staging",
        "int_customers_crosswalk": "intermediate",
        "customers": "canonical",
        "customers_history": "canonical",
        "receivables_aging": "finance",
    }


def test_crosswalk_links_each_record_by_the_first_rule_that_names_one_customer(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    rows = {
        (system, key): (customer_id, rule, status, duplicate)
        for system, key, customer_id, rule, status, duplicate in sql(
            "select system, system_key, customer_id, match_rule, match_status, is_duplicate "
            "from intermediate.int_customers_crosswalk",
        )
    }
    c1, c2, c3, c4 = (md5(f"C-00000{n}") for n in (1, 2, 3, 4))
    assert rows[("crm", "101")] == (c1, "explicit_ref", "matched", False)
    assert rows[("billing", "cus_0001")] == (c1, "explicit_ref", "matched", False)
    assert rows[("shop", "7001")] == (c1, "explicit_ref", "matched", False)
    # the ERP names the CRM contact and the billing customer
    assert rows[("crm", "102")] == (c2, "explicit_ref", "matched", False)
    assert rows[("billing", "cus_0002")] == (c2, "explicit_ref", "matched", False)
    # the shop has the CRM's new email, which the customer is known by through the CRM link
    assert rows[("shop", "7002")] == (c2, "email", "matched", False)
    assert rows[("crm", "103")] == (c3, "email", "matched", False)
    assert rows[("billing", "cus_0003")] == (c3, "phone", "matched", False)
    assert rows[("crm", "104")] == (c4, "vat_number", "matched", False)
    # archived and deleted records are not there at all
    assert ("crm", "106") not in rows and ("billing", "cus_0009") not in rows


def test_duplicates_are_flagged_and_never_read_by_canonical(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    c3 = md5("C-000003")
    shop = sql(
        "select system_key, duplicate_rank, is_duplicate from intermediate.int_customers_by_system "
        "where customer_id = %s and system = 'shop' order by duplicate_rank",
        c3,
    )
    assert shop == [("7003", 1, False), ("7004", 2, True)]
    assert sql("select shop_id from canonical.customers where customer_id = %s", c3) == [("7003",)]
    orders = sql(
        "select system_key, is_duplicate from intermediate.int_orders_by_system "
        "where system = 'erp' and order_id = %s order by system_key",
        md5("5003"),
    )
    assert orders == [("SO-000004", False), ("SO-000005", True)]
    invoices = sql(
        "select system_key, is_duplicate from intermediate.int_invoices_by_system "
        "where system = 'billing' and invoice_id = %s order by system_key",
        md5("INV-000002"),
    )
    assert invoices == [("in_0002", False), ("in_0003", True)]


def test_unmatched_and_ambiguous_records_stay_visible_and_unmerged(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    rows = {
        (system, key): (status, candidates)
        for system, key, status, candidates in sql(
            "select system, system_key, match_status, candidate_ids "
            "from intermediate.int_customers_unmatched",
        )
    }
    assert rows[("crm", "105")] == ("unmatched", [])
    status, candidates = rows[("shop", "7006")]
    assert status == "ambiguous"
    assert sorted(candidates) == sorted([md5("C-000004"), md5("C-000005")])
    extras = sql(
        "select system, system_key from intermediate.int_orders_by_system where order_id is null "
        "union all select system, system_key from intermediate.int_invoices_by_system "
        "where invoice_id is null union all select system, system_key "
        "from intermediate.int_products_by_system where product_id is null order by 1, 2",
    )
    assert extras == [("billing", "in_0004"), ("erp", "SO-000003"), ("shop", "SKU-09999")]


def test_no_two_real_world_customers_are_merged(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    rows = sql(
        "select customer_id, count(distinct system_key) from intermediate.int_customers_crosswalk "
        "where system = 'erp' group by customer_id having count(distinct system_key) > 1",
    )
    assert rows == []


def test_fields_come_from_their_source_of_truth(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    customers = {
        erp_id: (name, email, country, sources)
        for erp_id, name, email, country, sources in sql(
            "select erp_id, name, email, country, field_sources from canonical.customers",
        )
    }
    # email from the CRM (as the CRM holds it), name from the ERP's latest version
    assert customers["C-000001"][:2] == ("Anna Mueller", "Anna.Mueller@Example.com ")
    assert customers["C-000002"][1] == "lukas.new@example.de"
    assert customers["C-000002"][3]["email"] == "crm" and customers["C-000002"][3]["name"] == "erp"
    # no live CRM record: the master's value, and field_sources says so
    assert customers["C-000005"][1] == "sophie.weber@example.com"
    assert customers["C-000005"][3]["email"] == "erp"
    invoices = dict(sql("select erp_id, status from canonical.invoices"))
    assert invoices["INV-000001"] == "paid"  # billing says paid, the ERP still says OPEN
    orders = dict(sql("select shop_id, status from canonical.orders"))
    assert orders == {"5001": "shipped", "5002": "open", "5003": "cancelled"}


def test_money_time_and_vocabulary_are_canonical(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    payments = dict(sql("select billing_id, amount from canonical.payments"))
    assert payments["py_0001"] == Decimal("39.80")
    assert str(payments["py_0001"]) == "39.80"
    billing = sql(
        "select currency, amount, due_at from intermediate.int_invoices_by_system "
        "where system_key = 'in_0001'",
    )
    assert billing == [("EUR", Decimal("39.80"), date(2026, 2, 5))]
    (updated,) = sql(
        "select updated_at from staging.stg_erp__customers where customer_no = 'C-000003'",
    )[0]
    assert updated == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # Berlin summer time, UTC+2
    assert sql("select country from staging.stg_crm__contacts where contact_id = '101'") == [
        ("DE",)
    ]
    (ordered,) = sql("select ordered_at from canonical.orders where shop_id = '5001'")[0]
    assert ordered == date(2026, 1, 6)  # 18:00 in New York is past midnight in Berlin


def test_surrogate_keys_are_md5_of_the_master_key(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    for table, key, master in (
        ("customers", "customer_id", "erp_id"),
        ("products", "product_id", "erp_id"),
        ("orders", "order_id", "shop_id"),
        ("invoices", "invoice_id", "erp_id"),
        ("payments", "payment_id", "billing_id"),
    ):
        assert sql(f"select count(*) from canonical.{table} where {key} <> md5({master})") == [(0,)]


def test_finance_marts(built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]) -> None:
    aging = dict(sql("select erp_invoice_no, aging_bucket from finance.receivables_aging"))
    assert aging == {"INV-000002": "1-30", "INV-000003": "31-60"}
    status = dict(
        sql(
            "select erp_invoice_no, payment_state from finance.invoice_payment_status",
        )
    )
    assert status == {"INV-000001": "paid", "INV-000002": "unpaid", "INV-000003": "unpaid"}
    revenue = sql(
        "select month, currency, invoiced_amount, collected_amount from finance.revenue_by_month "
        "order by 1, 2",
    )
    assert revenue == [
        (date(2025, 12, 1), "GBP", Decimal("100.00"), Decimal("0")),
        (date(2026, 1, 1), "EUR", Decimal("89.70"), Decimal("44.80")),
    ]
