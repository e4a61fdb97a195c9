-- why: payments in the same by-system shape as the other entities, so canonical.payments is
-- built by the same config-driven macro; billing is the only system, so every row is a master.
-- Each payment's invoice comes from billing_invoice_links(), the rule int_invoices_by_system
-- uses, read from staging so payments need not wait for every invoice.
-- Incremental by difference: every run computes the whole table (identity resolution can
-- re-key any row), and only the rows that differ are written.
{{
    config(
        materialized='incremental',
        incremental_strategy='diff',
        unique_key=['system', 'system_key'],
        indexes=[{'columns': ['payment_id', 'system']}, {'columns': ['system', 'system_key']}],
    )
}}

with

invoices as (
    {{ billing_invoice_links() }}
)

select
    {{ surrogate_key('payments.payment_no') }} as payment_id,
    'billing' as system,
    payments.payment_no as system_key,
    'master' as match_rule,
    'matched' as match_status,
    1 as duplicate_rank,
    false as is_duplicate,
    invoices.invoice_id,
    payments.billing_invoice_id as system_invoice_key,
    payments.billing_customer_id as system_customer_key,
    payments.amount,
    payments.currency,
    payments.status,
    payments.system_status,
    payments.created_at,
    payments.updated_at,
    payments._extracted_at
from {{ ref('stg_billing__payments') }} as payments
left join invoices on payments.billing_invoice_id = invoices.billing_invoice_id
where not payments._deleted
