"""The row_checks test (one query per model for all of its own column checks) fails on exactly what
dbt's per-column tests would fail on, and each failing row names the check, the column and the
value. Rows are broken inside a transaction that is rolled back: the shared build is untouched."""

from __future__ import annotations

from typing import Any

import psycopg

from tieout.paths import dbt_project_dir
from tieout.transform.runner import run_dbt


def compiled(test_name: str, url: str) -> str:
    run_dbt(["compile", "--select", test_name], url=url)
    found = list((dbt_project_dir() / "target" / "compiled").rglob(f"{test_name}.sql"))
    assert len(found) == 1, found
    return found[0].read_text()


def failures(url: str, test_name: str, breakage: list[str]) -> set[tuple[Any, ...]]:
    query = compiled(test_name, url)
    with psycopg.connect(url) as conn:
        for statement in breakage:
            conn.execute(statement)  # type: ignore[arg-type]
        rows = conn.execute(query).fetchall()  # type: ignore[arg-type]
        conn.rollback()
    return {tuple(row[:3]) for row in rows}


def test_row_checks_pass_on_the_build_and_name_every_broken_column(
    built: dict[str, Any], raw_loaded: str
) -> None:
    assert failures(raw_loaded, "row_checks_orders", []) == set()
    with psycopg.connect(raw_loaded) as conn:
        rows = conn.execute("select order_id from canonical.orders order by order_id")
        ids = [r[0] for r in rows]
        shop_id = conn.execute(
            "select shop_id from canonical.orders where order_id = %s", (ids[0],)
        ).fetchone()
    assert len(ids) >= 3 and shop_id
    found = failures(
        raw_loaded,
        "row_checks_orders",
        [
            f"update canonical.orders set amount = -5 where order_id = '{ids[0]}'",
            f"update canonical.orders set status = null where order_id = '{ids[1]}'",
            f"update canonical.orders set status = 'lost', shop_id = '{shop_id[0]}' "
            f"where order_id = '{ids[2]}'",
        ],
    )
    assert found == {
        ("not_negative", "amount", "-5"),
        ("not_null", "status", None),
        ("accepted_values", "status", "lost"),
        ("unique", "shop_id", shop_id[0]),
    }


def test_row_checks_cover_column_combinations_and_expressions(
    built: dict[str, Any], raw_loaded: str
) -> None:
    with psycopg.connect(raw_loaded) as conn:
        line = conn.execute(
            "select order_id from canonical.order_lines where line_number = 1 limit 1"
        ).fetchone()
    assert line
    found = failures(
        raw_loaded,
        "row_checks_order_lines",
        [
            "insert into canonical.order_lines (order_line_id, order_id, line_number, quantity) "
            f"values ('copy', '{line[0]}', 1, 1)"
        ],
    )
    assert found == {("unique", "order_id, line_number", f"{line[0]}|1")}

    found = failures(
        raw_loaded,
        "row_checks_int_customers_crosswalk",
        ["update intermediate.int_customers_crosswalk set match_rule = null where system = 'erp'"],
    )
    assert found == {("expression_is_true", "match_rule is not null", None)}


def test_foreign_keys_names_every_reference_without_a_parent(
    built: dict[str, Any], raw_loaded: str
) -> None:
    """One test per model for its references, failing where dbt's relationships test would:
    a value its parent lacks; never a null."""
    assert failures(raw_loaded, "relationships_invoices", []) == set()
    with psycopg.connect(raw_loaded) as conn:
        ids = [r[0] for r in conn.execute("select invoice_id from canonical.invoices order by 1")]
    assert len(ids) >= 3
    found = failures(
        raw_loaded,
        "relationships_invoices",
        [
            f"update canonical.invoices set currency = 'XXX' where invoice_id = '{ids[0]}'",
            f"update canonical.invoices set order_id = 'nope' where invoice_id = '{ids[1]}'",
            f"update canonical.invoices set customer_id = null where invoice_id = '{ids[2]}'",
        ],
    )
    assert found == {("currency", "XXX", 1), ("order_id", "nope", 1)}


def test_a_currency_the_seed_lacks_fails_the_staging_row_checks(
    built: dict[str, Any], raw_loaded: str
) -> None:
    """Staging takes a currency's code from the currencies seed and keeps what the system sent;
    a code the seed lacks leaves the currency null and fails the model's row checks, naming the
    value the system sent."""
    assert failures(raw_loaded, "row_checks_stg_shop__orders", []) == set()
    found = failures(
        raw_loaded,
        "row_checks_stg_shop__orders",
        [
            "update staging.stg_shop__orders set currency = null, system_currency = 'XYZ' "
            "where shop_order_id = '5001'"
        ],
    )
    assert found == {("mapped_when_present", "currency", "XYZ")}
