"""Cross-entity balances: do invoices, payments and orders add up, per currency?

Computed in PostgreSQL from canonical tables into recon.balances for one run (a rerun replaces
that run's rows). It must never net amounts of different currencies against each other.
"""

from __future__ import annotations

from typing import Any

import psycopg

REQUIRED = {
    "canonical.invoices": {"invoice_id", "customer_id", "amount", "currency", "status"},
    "canonical.payments": {"payment_id", "invoice_id", "amount", "currency", "status"},
    "canonical.orders": {"order_id", "amount", "currency"},
}

INVOICE_PAYMENTS = """
insert into recon.balances (
    run_id, check_name, subject_key, subject_ref, customer_id, currency,
    expected, actual, difference, outcome, detail
)
with

invoices as (
    select
        invoice_id,
        {invoice_ref} as invoice_ref,
        customer_id,
        amount,
        upper(currency) as currency,
        status
    from canonical.invoices
    where invoice_id is not null
),

received as (
    select
        invoice_id,
        upper(currency) as currency,
        sum(amount) as amount,
        count(*) as payments
    from canonical.payments
    where status = 'succeeded' and invoice_id is not null
    group by invoice_id, upper(currency)
),

paid_in_other_currency as (
    select
        received.invoice_id,
        string_agg(received.currency, ',' order by received.currency) as currency,
        sum(received.amount) as amount
    from received
    inner join invoices on received.invoice_id = invoices.invoice_id
    where received.currency <> invoices.currency
    group by received.invoice_id
),

settled as (
    select
        invoices.invoice_id,
        invoices.invoice_ref,
        invoices.customer_id,
        invoices.currency,
        invoices.status,
        case when invoices.status = 'void' then 0 else invoices.amount end as expected,
        coalesce(same.amount, 0) as actual,
        coalesce(same.payments, 0) as payments,
        other.currency as other_currency,
        other.amount as other_amount
    from invoices
    left join received as same
        on invoices.invoice_id = same.invoice_id and invoices.currency = same.currency
    left join paid_in_other_currency as other on invoices.invoice_id = other.invoice_id
)

select
    %(run_id)s,
    'invoice_payments',
    invoice_id,
    invoice_ref,
    customer_id,
    currency,
    expected,
    actual,
    actual - expected,
    case
        when other_currency is not null then 'currency_mismatch'
        when status = 'paid' and actual <> expected then 'paid_amount_mismatch'
        when actual = 0 then 'unpaid'
        when actual < expected then 'underpaid'
        else 'overpaid'
    end,
    jsonb_build_object(
        'status', status, 'payments', payments,
        'other_currency', other_currency, 'other_amount', other_amount
    )
from settled
where actual <> expected or other_currency is not null
"""

CUSTOMER_PAYMENTS = """
insert into recon.balances (
    run_id, check_name, subject_key, subject_ref, customer_id, currency,
    expected, actual, difference, outcome, detail
)
with

invoiced as (
    select customer_id, upper(currency) as currency, sum(amount) as amount, count(*) as invoices
    from canonical.invoices
    where customer_id is not null and status <> 'void'
    group by customer_id, upper(currency)
),

received as (
    select
        invoices.customer_id,
        upper(payments.currency) as currency,
        sum(payments.amount) as amount
    from canonical.payments as payments
    inner join canonical.invoices as invoices on payments.invoice_id = invoices.invoice_id
    where payments.status = 'succeeded' and invoices.customer_id is not null
    group by invoices.customer_id, upper(payments.currency)
),

balanced as (
    select
        coalesce(invoiced.customer_id, received.customer_id) as customer_id,
        coalesce(invoiced.currency, received.currency) as currency,
        coalesce(invoiced.amount, 0) as expected,
        coalesce(received.amount, 0) as actual,
        coalesce(invoiced.invoices, 0) as invoices
    from invoiced
    full join received
        on invoiced.customer_id = received.customer_id and invoiced.currency = received.currency
)

select
    %(run_id)s,
    'customer_payments',
    customer_id || ' ' || currency,
    {customer_ref},
    customer_id,
    currency,
    expected,
    actual,
    actual - expected,
    case when actual = 0 then 'unpaid' when actual < expected then 'underpaid' else 'overpaid' end,
    jsonb_build_object('invoices', invoices)
from balanced
where actual <> expected
"""

ORDER_INVOICE = """
insert into recon.balances (
    run_id, check_name, subject_key, subject_ref, customer_id, currency,
    expected, actual, difference, outcome, detail
)
with

orders as (
    select order_id, {order_ref} as order_ref, {order_customer} as customer_id, amount,
        upper(currency) as currency
    from canonical.orders
    where order_id is not null
),

invoiced as (
    select
        order_id,
        sum(amount) as amount,
        count(*) as invoices,
        min(upper(currency)) as currency,
        count(distinct upper(currency)) as currencies
    from canonical.invoices
    where order_id is not null
    group by order_id
),

compared as (
    select orders.*, invoiced.amount as invoiced, invoiced.invoices, invoiced.currency as
        invoice_currency, invoiced.currencies
    from orders
    left join invoiced on orders.order_id = invoiced.order_id
)

select
    %(run_id)s,
    'order_invoice',
    order_id,
    order_ref,
    customer_id,
    currency,
    amount,
    coalesce(invoiced, 0),
    coalesce(invoiced, 0) - amount,
    case
        when invoices is null then 'order_without_invoice'
        when currencies > 1 or invoice_currency <> currency then 'currency_mismatch'
        else 'amount_mismatch'
    end,
    jsonb_build_object('invoices', coalesce(invoices, 0), 'invoice_currency', invoice_currency)
from compared
where invoices is null or invoiced <> amount or currencies > 1 or invoice_currency <> currency
"""

PAYMENT_INVOICE = """
insert into recon.balances (
    run_id, check_name, subject_key, subject_ref, customer_id, currency,
    expected, actual, difference, outcome, detail
)
select
    %(run_id)s,
    'payment_invoice',
    payment_id,
    {payment_ref},
    null,
    upper(currency),
    0,
    amount,
    amount,
    'payment_without_invoice',
    jsonb_build_object('status', status)
from canonical.payments
where status = 'succeeded' and invoice_id is null
"""


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

    statements = []
    if not {"canonical.invoices", "canonical.payments"} & set(skipped):
        statements.append(
            INVOICE_PAYMENTS.format(invoice_ref=ref(invoices, "erp_id", "invoice_id"))
        )
        statements.append(CUSTOMER_PAYMENTS.format(customer_ref="customer_id"))
        statements.append(
            PAYMENT_INVOICE.format(payment_ref=ref(payments, "billing_id", "payment_id"))
        )
    if not {"canonical.invoices", "canonical.orders"} & set(skipped) and "order_id" in invoices:
        statements.append(
            ORDER_INVOICE.format(
                order_ref=ref(orders, "shop_id", "order_id"),
                order_customer=ref(orders, "customer_id", "cast(null as text)"),
            )
        )
    for statement in statements:
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
