-- why: invoiced and collected money per calendar month and currency; amounts of different
-- currencies are never added together.

with

invoiced as (
    select
        cast(date_trunc('month', issued_at) as date) as month,
        currency,
        sum(amount) as invoiced_amount,
        count(*) as invoice_count
    from {{ ref('invoices') }}
    where status <> 'void' and issued_at is not null
    group by 1, 2
),

collected as (
    select
        cast(date_trunc('month', paid_at at time zone 'UTC') as date) as month,
        currency,
        sum(amount) as collected_amount,
        count(*) as payment_count
    from {{ ref('payments') }}
    where status = 'succeeded'
    group by 1, 2
)

select
    coalesce(invoiced.month, collected.month) as month,
    coalesce(invoiced.currency, collected.currency) as currency,
    coalesce(invoiced.invoiced_amount, 0) as invoiced_amount,
    coalesce(invoiced.invoice_count, 0) as invoice_count,
    coalesce(collected.collected_amount, 0) as collected_amount,
    coalesce(collected.payment_count, 0) as payment_count
from invoiced
full outer join collected on invoiced.month = collected.month and invoiced.currency = collected.currency
