"""Reruns over the shared build: with no new raw data nothing is run (and a forced run of every
node rewrites nothing); after new record versions arrive only what is downstream of them is built
and tested, only the changed entities are rewritten, history gains exactly those versions, and
surrogate keys do not move. Runs after test_build.py (it appends to raw)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg

from tieout.paths import dbt_project_dir
from tieout.transform import build
from tieout.transform.runner import run_dbt

INCREMENTAL = ("orders", "order_lines", "invoices", "payments")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_rerun_without_new_raw_data_runs_nothing(built: dict[str, Any], raw_loaded: str) -> None:
    figures = build(run_id="test__noop", url=raw_loaded, as_of_date="2026-01-31")
    assert figures["plan"] == {"reason": "nothing changed", "select": []}
    assert figures["nodes"] == 0
    assert figures["canonical_rows"] == built["canonical_rows"]
    assert "build_id" not in figures  # canonical is the build it was: no new build id
    with psycopg.connect(raw_loaded) as conn:
        recorded = conn.execute("select build_id, path from ops.builds").fetchall()
    assert (built["build_id"], "cli") in recorded and len(recorded) == len(set(recorded))


def test_a_new_as_of_date_reruns_the_aging_only(built: dict[str, Any], raw_loaded: str) -> None:
    figures = build(run_id="test__new_date", url=raw_loaded, as_of_date="2026-02-28")
    assert figures["plan"] == {
        "reason": "raw data changed",
        "select": ["receivables_aging+"],
        "exclude": ["resource_type:unit_test"],
    }
    assert set(figures["rows_affected"]) == {"receivables_aging"}
    assert figures["failed"] == [] and figures["by_type"]["test"]
    # the date reached dbt (through TIEOUT_AS_OF_DATE, not a var)
    with psycopg.connect(raw_loaded) as conn:
        dates = conn.execute("select distinct as_of_date from finance.receivables_aging").fetchall()
    assert dates == [(date(2026, 2, 28),)]


def test_forced_rerun_of_every_node_rewrites_nothing(
    built: dict[str, Any], raw_loaded: str
) -> None:
    figures = build(
        run_id="test__noop_all", url=raw_loaded, as_of_date="2026-01-31", incremental=False
    )
    assert figures["plan"]["reason"] == "everything requested"
    assert figures["nodes"] == built["nodes"]
    rows = figures["rows_affected"]
    for model in INCREMENTAL:
        assert rows[model] == 0, model
    assert all(rows[m] == 0 for m in rows if m.startswith("stg_")), rows
    assert all(rows[s] == 0 for s in ("customers_history", "orders_history", "invoices_history"))
    assert figures["canonical_rows"] == built["canonical_rows"]


def test_rerun_after_new_versions_processes_only_what_changed(
    built: dict[str, Any],
    raw_loaded: str,
    sql: Callable[..., list[tuple[Any, ...]]],
    append_raw: Callable[..., None],
) -> None:
    keys_before = dict(sql("select erp_id, customer_id from canonical.customers"))
    comments = (
        "select obj_description(attrelid), col_description(attrelid, attnum) from pg_attribute "
        "where attrelid = 'canonical.orders'::regclass and attname = 'customer_id'"
    )
    documented = sql(comments)
    assert documented[0][0] and documented[0][1]
    with psycopg.connect(raw_loaded, autocommit=True) as conn:  # as if docs were never written
        conn.execute("comment on table canonical.orders is null")
        conn.execute("comment on column canonical.orders.customer_id is null")
    later = "2026-01-11T02:00:00Z"
    append_raw(
        "billing__invoices",
        [
            {
                "extracted_at": later,
                "record": {
                    "id": "in_0002",
                    "customer": "cus_0002",
                    "currency": "eur",
                    "amount_due": 4990,
                    "amount_paid": 4990,
                    "status": "paid",
                    "metadata": {"erp_invoice_no": "INV-000002"},
                    "created": 1767690000,
                    "updated": 1768100000,
                    "due_date": 1768867200,
                },
            }
        ],
        run_id="test_day_2",
    )
    append_raw(
        "shop__orders",
        [
            {
                "extracted_at": later,
                "record": {
                    "id": 5004,
                    "name": "#1004",
                    "customer": {"id": 7001},
                    "currency": "EUR",
                    "total_price": "49.90",
                    "financial_status": "pending",
                    "fulfillment_status": None,
                    "line_items": [
                        {"id": 60004, "sku": "SKU-00002", "quantity": 1, "price": "49.90"}
                    ],
                    "created_at": "2026-01-10T10:00:00-05:00",
                    "updated_at": "2026-01-10T10:00:00-05:00",
                    "cancelled_at": None,
                },
            }
        ],
        run_id="test_day_2",
    )
    figures = build(run_id="test__day2", url=raw_loaded, as_of_date="2026-01-31")
    assert sorted(figures["plan"]["select"]) == [
        "source:tieout.billing.invoices+",
        "source:tieout.shop.orders+",
    ]
    rows = figures["rows_affected"]
    assert rows["stg_billing__invoices"] == 1 and rows["stg_shop__orders"] == 1
    assert "stg_erp__customers" not in rows and "customers" not in rows  # untouched, not run
    tested = figures["by_type"]["test"]
    assert tested == {"pass": tested.get("pass", 0)} and tested["pass"] > 10
    assert "unit_test" not in figures["by_type"]  # same project: they passed on the last build
    assert sql(comments) == documented  # a missing comment is written back
    assert rows["invoices"] == 1 and rows["orders"] == 1 and rows["order_lines"] == 1
    assert rows["payments"] == 0
    assert figures["canonical_rows"]["orders"] == 4
    assert sql("select status from canonical.invoices where erp_id = 'INV-000002'") == [("paid",)]
    history = sql(
        "select status, dbt_valid_to is null from canonical.invoices_history "
        "where invoice_id = %s order by dbt_valid_from",
        md5("INV-000002"),
    )
    assert history == [("open", False), ("paid", True)]
    assert sql("select count(*) from canonical.orders_history") == [(4,)]
    assert dict(sql("select erp_id, customer_id from canonical.customers")) == keys_before


def test_an_order_deleted_at_the_source_leaves_canonical_and_closes_its_history(
    built: dict[str, Any], raw_loaded: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    order_id = md5("5004")  # the order the test above added
    assert sql("select count(*) from canonical.order_lines where order_id = %s", order_id) == [(1,)]
    with psycopg.connect(
        raw_loaded, autocommit=True
    ) as conn:  # as extract's deletion scan marks it
        conn.execute(
            "insert into raw.shop__orders "
            "(_pk, _record, _record_hash, _extracted_at, _run_id, _source_url, _deleted) "
            "select _pk, _record, md5(_record_hash || ':deleted'), '2026-01-12T02:00:00Z', "
            "'test_day_3', 'deletion-scan', true "
            "from raw.shop__orders where _pk = '5004' order by _seq desc limit 1"
        )
    figures = build(run_id="test__day3", url=raw_loaded, as_of_date="2026-01-31")
    assert figures["canonical_rows"]["orders"] == 3
    assert sql("select count(*) from canonical.orders where order_id = %s", order_id) == [(0,)]
    assert sql("select count(*) from canonical.order_lines where order_id = %s", order_id) == [(0,)]
    assert sql(
        "select dbt_valid_to is null from canonical.orders_history where order_id = %s",
        order_id,
    ) == [(False,)]


def test_a_product_the_catalogue_drops_is_unmapped_on_every_line_that_names_it(
    built: dict[str, Any], raw_loaded: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    lines = "select count(*), count(product_id) from canonical.order_lines where sku = 'SKU-00002'"
    ((named, mapped),) = sql(lines)
    assert named > 0 and mapped == named
    (of_those_orders,) = sql(
        "select count(*) from canonical.order_lines where order_id in "
        "(select order_id from canonical.order_lines where sku = 'SKU-00002')"
    )[0]
    with psycopg.connect(raw_loaded, autocommit=True) as conn:  # no order changes, only the sku
        conn.execute(
            "insert into raw.erp__products "
            "(_pk, _record, _record_hash, _extracted_at, _run_id, _source_url, _deleted) "
            "select _pk, _record, md5(_record_hash || ':deleted'), '2026-01-13T02:00:00Z', "
            "'test_day_4', 'deletion-scan', true "
            "from raw.erp__products where _pk = 'SKU-00002' order by _seq desc limit 1"
        )
    figures = build(run_id="test__day4", url=raw_loaded, as_of_date="2026-01-31")
    assert figures["rows_affected"]["order_lines"] == of_those_orders  # their lines, no others
    assert sql(lines) == [(named, 0)]


def mark_deleted(url: str, table: str, pk: str, extracted_at: str) -> None:
    """A deletion marker for a record, as extract's deletion scan appends it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"insert into raw.{table} "  # type: ignore[arg-type]
            "(_pk, _record, _record_hash, _extracted_at, _run_id, _source_url, _deleted) "
            "select _pk, _record, md5(_record_hash || ':deleted'), %s, 'test_deletion', "
            f"'deletion-scan', true from raw.{table} where _pk = %s order by _seq desc limit 1",
            (extracted_at, pk),
        )


def test_by_system_reruns_follow_links_ranks_and_customers(
    built: dict[str, Any],
    raw_loaded: str,
    sql: Callable[..., list[tuple[Any, ...]]],
    append_raw: Callable[..., None],
) -> None:
    """The by-system models recompute only what can have changed; each way a row changes
    without its own record changing is exercised here (and the next test compares the end
    state with a full build): a link that appears later, a duplicate group that loses its
    first-ranked copy, and a customer the crosswalk re-keys."""
    by_system = (
        "select order_id, match_rule, duplicate_rank, customer_id from "
        "intermediate.int_orders_by_system where system = %s and system_key = %s"
    )
    day5 = "2026-01-14T02:00:00Z"
    ((rank_before,),) = sql(
        "select duplicate_rank from intermediate.int_orders_by_system "
        "where system = 'erp' and system_key = 'SO-000005'"
    )
    assert rank_before == 2  # SO-000004 and SO-000005 both name shop order 5003
    append_raw(
        "erp__sales_orders",
        [
            {
                "extracted_at": day5,
                "record": {
                    "order_no": "SO-000006",
                    "customer_no": "C-000001",
                    "shop_order_id": "5006",  # a shop order that has not arrived yet
                    "order_date": "2026-01-13",
                    "currency": "EUR",
                    "total": "19.90",
                    "status": "OPEN",
                    "lines": [
                        {"line_no": 1, "sku": "SKU-00001", "quantity": 1, "unit_price": "19.90"}
                    ],
                    "modified_at": "2026-01-13 10:00:00",
                },
            }
        ],
        run_id="test_day_5",
    )
    append_raw(
        "billing__invoices",
        [
            {
                "extracted_at": day5,
                "record": {
                    "id": "in_0005",
                    "customer": "cus_0001",
                    "currency": "eur",
                    "amount_due": 1990,
                    "amount_paid": 0,
                    "status": "open",
                    "metadata": {"erp_invoice_no": "INV-000004"},  # not in the ERP yet
                    "created": 1768300000,
                    "updated": 1768300000,
                    "due_date": 1770900000,
                },
            }
        ],
        run_id="test_day_5",
    )
    append_raw(  # shop customer 7004 now has the email of ERP customer C-000004
        "shop__customers",
        [
            {
                "extracted_at": day5,
                "record": {
                    "id": 7004,
                    "email": "jonas@fischer.example",
                    "first_name": "Marie",
                    "last_name": "Schneider",
                    "phone": None,
                    "default_address": {
                        "address1": "Rue de la Paix 3",
                        "zip": "75001",
                        "city": "Paris",
                        "country_code": "FR",
                    },
                    "tags": "",
                    "created_at": "2026-01-03T04:00:00-05:00",
                    "updated_at": "2026-01-13T04:00:00-05:00",
                },
            }
        ],
        run_id="test_day_5",
    )
    mark_deleted(raw_loaded, "erp__sales_orders", "SO-000004", day5)
    customer_before = sql(by_system, "shop", "5003")[0][3]
    figures = build(run_id="test__day5", url=raw_loaded, as_of_date="2026-01-31")

    # SO-000006, SO-000005 (re-ranked) and shop order 5003 (re-keyed): nothing else
    assert figures["rows_affected"]["int_orders_by_system"] == 3
    assert sql(by_system, "erp", "SO-000006") == [(None, None, None, md5("C-000001"))]
    assert sql(by_system, "erp", "SO-000004") == []
    assert sql(by_system, "erp", "SO-000005")[0][:3] == (md5("5003"), "explicit_ref", 1)
    ((rekeyed,),) = sql(
        "select customer_id from intermediate.int_customers_crosswalk "
        "where system = 'shop' and system_key = '7004'"
    )
    assert rekeyed != customer_before
    assert sql(by_system, "shop", "5003")[0][3] == rekeyed
    # canonical follows: the order's ERP copy is now SO-000005, its customer the re-keyed one
    assert sql(
        "select erp_id, customer_id from canonical.orders where order_id = %s", md5("5003")
    ) == [("SO-000005", rekeyed)]
    assert sql(
        "select invoice_id from intermediate.int_invoices_by_system "
        "where system = 'billing' and system_key = 'in_0005'"
    ) == [(None,)]

    day6 = "2026-01-15T02:00:00Z"
    append_raw(
        "shop__orders",
        [
            {
                "extracted_at": day6,
                "record": {
                    "id": 5006,
                    "name": "#1006",
                    "customer": {"id": 7001},
                    "currency": "EUR",
                    "total_price": "19.90",
                    "financial_status": "pending",
                    "fulfillment_status": None,
                    "line_items": [
                        {"id": 60006, "sku": "SKU-00001", "quantity": 1, "price": "19.90"}
                    ],
                    "created_at": "2026-01-13T04:00:00-05:00",
                    "updated_at": "2026-01-13T04:00:00-05:00",
                    "cancelled_at": None,
                },
            }
        ],
        run_id="test_day_6",
    )
    append_raw(
        "erp__invoices",
        [
            {
                "extracted_at": day6,
                "record": {
                    "invoice_no": "INV-000004",
                    "customer_no": "C-000001",
                    "order_no": "SO-000006",
                    "currency": "EUR",
                    "total_amount": "19.90",
                    "tax_amount": "3.18",
                    "status": "OPEN",
                    "issued_on": "2026-01-13",
                    "due_on": "2026-02-12",
                    "modified_at": "2026-01-13 10:00:00",
                },
            }
        ],
        run_id="test_day_6",
    )
    mark_deleted(raw_loaded, "erp__sales_orders", "SO-000001", day6)  # INV-000001's order
    figures = build(run_id="test__day6", url=raw_loaded, as_of_date="2026-01-31")

    # the new shop order and the ERP order that named it before it arrived (SO-000001 is gone)
    assert figures["rows_affected"]["int_orders_by_system"] == 2
    assert sql(
        "select erp_id from canonical.orders where order_id in (%s, %s) order by shop_id",
        md5("5001"),
        md5("5006"),
    ) == [(None,), ("SO-000006",)]
    assert sql("select order_id from canonical.invoices where erp_id = 'INV-000001'") == [(None,)]
    assert sql(by_system, "erp", "SO-000006")[0][:3] == (md5("5006"), "explicit_ref", 1)
    assert sql(
        "select invoice_id, match_rule from intermediate.int_invoices_by_system "
        "where system = 'billing' and system_key = 'in_0005'"
    ) == [(md5("INV-000004"), "explicit_ref")]
    assert sql(
        "select erp_id, billing_id, order_id from canonical.invoices where erp_id = 'INV-000004'"
    ) == [("INV-000004", "in_0005", md5("5006"))]


def test_incremental_reruns_end_where_a_full_build_would(
    built: dict[str, Any], raw_loaded: str, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    """After the reruns above, a full refresh from the same raw data changes no row of any table
    dbt builds (history aside: it accumulates by design; _loaded_at says when a row was written)."""
    tables = [
        f"{schema}.{name}"
        for schema, name in sql(
            "select schemaname, tablename from pg_tables "
            "where schemaname in ('staging', 'intermediate', 'canonical', 'finance') "
            "and tablename not like '%%_history' order by 1, 2"
        )
    ]
    assert "canonical.order_lines" in tables and "finance.receivables_aging" in tables

    def contents() -> dict[str, list[str]]:
        return {
            table: [
                row[0]
                for row in sql(
                    f"select (to_jsonb(t) - '_loaded_at')::text from {table} as t order by 1"
                )
            ]
            for table in tables
        }

    after_reruns = contents()
    assert after_reruns["canonical.orders"], "the reruns left canonical tables filled"
    build(run_id="test__full_again", url=raw_loaded, as_of_date="2026-01-31", full_refresh=True)
    after_full = contents()
    changed = [t for t in tables if after_full[t] != after_reruns[t]]
    assert changed == []


def test_order_lines_source_hash_carries_the_model_files_checksum(
    built: dict[str, Any], raw_loaded: str
) -> None:
    """order_lines expands only orders whose inputs changed, and the model file is one of them:
    its checksum (dbt's, recomputed when the file is edited) is compiled into every order's
    _order_source_hash, so an edit makes every stored hash differ and re-derives every order."""
    run_dbt(["compile", "--select", "order_lines"], url=raw_loaded)
    target = dbt_project_dir() / "target"
    checksum = json.loads((target / "manifest.json").read_text())["nodes"][
        "model.tieout.order_lines"
    ]["checksum"]["checksum"]
    compiled = next((target / "compiled").rglob("order_lines.sql")).read_text()
    assert f"'{checksum}'" in compiled.split("as _order_source_hash")[0]
