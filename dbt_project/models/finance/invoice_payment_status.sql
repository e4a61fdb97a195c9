-- why: for every canonical invoice, what billing says its status is next to what the payments
-- actually add up to, so finance sees paid-but-open and open-but-paid invoices at a glance.
-- Incremental: every run classifies every invoice (a payment can move between invoices), but
-- writes only the rows whose content changed, and deletes those of invoices that are gone.
{%- set columns = [
    'invoice_id', 'erp_invoice_no', 'billing_invoice_id', 'customer_id', 'currency', 'amount',
    'status', 'issued_at', 'due_at', 'paid_amount', 'refunded_amount', 'payment_count',
    'last_paid_at', 'outstanding_amount', 'payment_state', 'status_agrees_with_payments',
] %}
{{
    config(
        materialized='incremental',
        unique_key='invoice_id',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_unmatched('invoice_id', ref('invoices')) }}",
    )
}}

with

invoices as (
    select * from {{ ref('invoices') }}
),

payments as (
    select
        invoice_id,
        sum(case when status = 'succeeded' then amount else 0 end) as paid_amount,
        sum(case when status = 'refunded' then amount else 0 end) as refunded_amount,
        count(*) filter (where status = 'succeeded') as payment_count,
        max(paid_at) filter (where status = 'succeeded') as last_paid_at
    from {{ ref('payments') }}
    where invoice_id is not null
    group by invoice_id
),

joined as (
    select
        invoices.invoice_id,
        invoices.erp_id as erp_invoice_no,
        invoices.billing_id as billing_invoice_id,
        invoices.customer_id,
        invoices.currency,
        invoices.amount,
        invoices.status,
        invoices.issued_at,
        invoices.due_at,
        coalesce(payments.paid_amount, 0) as paid_amount,
        coalesce(payments.refunded_amount, 0) as refunded_amount,
        coalesce(payments.payment_count, 0) as payment_count,
        payments.last_paid_at
    from invoices
    left join payments on invoices.invoice_id = payments.invoice_id
),

classified as (
    select
        *,
        amount - paid_amount as outstanding_amount,
        case
            when status = 'void' then 'void'
            when paid_amount = 0 then 'unpaid'
            when paid_amount < amount then 'partially_paid'
            when paid_amount = amount then 'paid'
            else 'overpaid'
        end as payment_state
    from joined
),

final as (
    select
        *,
        case
            when status = 'void' then paid_amount = 0
            when status = 'paid' then payment_state in ('paid', 'overpaid')
            else payment_state in ('unpaid', 'partially_paid')
        end as status_agrees_with_payments
    from classified
),

-- the table's columns are the list above: the rows are compared on exactly those
changed as (
    select {{ columns_of('final', columns) }}
    from
        final
    {%- if is_incremental() %}
        left join {{ this }} as current_rows on final.invoice_id = current_rows.invoice_id
        where
            current_rows.invoice_id is null
            or ({{ columns_of('final', columns) }}) is distinct from ({{ columns_of('current_rows', columns) }})
    {%- endif %}
)

-- the hash only of the rows written: comparing the columns is cheaper than hashing every row
select
    changed.*,
    md5(cast(row(changed.*) as text)) as _row_hash
from changed
