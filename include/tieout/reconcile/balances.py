"""Cross-entity balances: do invoices, payments and orders add up, per currency?

Computed in PostgreSQL from canonical tables into recon.balances for one run (a rerun replaces
that run's rows), one statement per check in sql/balance_<check>.sql.j2. It must never net
amounts of different currencies against each other.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tieout.reconcile import statements

REQUIRED = {
    "canonical.invoices": {"invoice_id", "customer_id", "amount", "currency", "status"},
    "canonical.payments": {"payment_id", "invoice_id", "amount", "currency", "status"},
    "canonical.orders": {"order_id", "amount", "currency"},
}


def columns(conn: psycopg.Connection[Any], relation: str) -> set[str]:
    schema, table = relation.split(".")
    rows = conn.execute(
        """select column_name from information_schema.columns
           where table_schema = %s and table_name = %s""",
        (schema, table),
    ).fetchall()
    return {row[0] for row in rows}


def compute(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    """Write this run's balance breaks; returns counts and amounts by check, outcome, currency."""
    available = {relation: columns(conn, relation) for relation in REQUIRED}
    conn.execute("delete from recon.balances where run_id = %s", (run_id,))
    skipped = [
        relation for relation, needed in REQUIRED.items() if not needed <= available[relation]
    ]
    invoices, payments, orders = (
        available["canonical.invoices"],
        available["canonical.payments"],
        available["canonical.orders"],
    )

    def ref(cols: set[str], column: str, fallback: str) -> str:
        return f"cast({column} as text)" if column in cols else fallback

    checks: list[tuple[str, dict[str, str]]] = []
    if not {"canonical.invoices", "canonical.payments"} & set(skipped):
        checks.append(("invoice_payments", {"invoice_ref": ref(invoices, "erp_id", "invoice_id")}))
        checks.append(("customer_payments", {}))
        checks.append(
            ("payment_invoice", {"payment_ref": ref(payments, "billing_id", "payment_id")})
        )
    if not {"canonical.invoices", "canonical.orders"} & set(skipped) and "order_id" in invoices:
        checks.append(
            (
                "order_invoice",
                {
                    "order_ref": ref(orders, "shop_id", "order_id"),
                    "order_customer": ref(orders, "customer_id", "cast(null as text)"),
                },
            )
        )
    for check, names in checks:
        statement = statements.render(f"balance_{check}", **names)
        conn.execute(statement, {"run_id": run_id})  # type: ignore[arg-type]
    rows = conn.execute(
        """select check_name, outcome, currency, count(*), sum(abs(difference))
           from recon.balances where run_id = %s
           group by check_name, outcome, currency order by 1, 2, 3""",
        (run_id,),
    ).fetchall()
    summary: dict[str, Any] = {"skipped": skipped, "breaks": []}
    for check, outcome, currency, count, amount in rows:
        summary["breaks"].append(
            {
                "check": check,
                "outcome": outcome,
                "currency": currency,
                "count": int(count),
                "amount": float(amount or 0),
            }
        )
    return summary
