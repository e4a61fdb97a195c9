-- why: every system's copy of every invoice in canonical vocabulary; ERP invoices define
-- invoices, billing invoices join them by metadata.erp_invoice_no. Customers are resolved to
-- canonical ids through the customer crosswalk, so both systems are compared in one id space.
-- Incremental by difference: every run computes the whole table (identity resolution can
-- re-key any row), and only the rows that differ are written.
{{
    config(
        materialized='incremental',
        incremental_strategy='diff',
        unique_key=['system', 'system_key'],
        indexes=[{'columns': ['invoice_id', 'system']}, {'columns': ['system', 'system_key']}],
    )
}}

with

customers as (
    select
        system,
        system_key,
        customer_id
    from {{ ref('int_customers_crosswalk') }}
),

erp as (
    select
        {{ surrogate_key('invoices.invoice_no') }} as invoice_id,
        'erp' as system,
        invoices.invoice_no as system_key,
        'master' as match_rule,
        customers.customer_id,
        invoices.customer_no as system_customer_key,
        invoices.amount,
        invoices.currency,
        invoices.status,
        invoices.system_status,
        invoices.issued_at,
        invoices.due_at,
        cast(null as numeric) as amount_paid,
        invoices.order_no as system_order_key,
        cast(null as timestamptz) as created_at,
        invoices.updated_at,
        invoices._extracted_at
    from {{ ref('stg_erp__invoices') }} as invoices
    left join customers on customers.system = 'erp' and invoices.customer_no = customers.system_key
    where not invoices._deleted
),

links as (
    {{ billing_invoice_links() }}
),

billing as (
    select
        links.invoice_id,
        'billing' as system,
        invoices.billing_invoice_id as system_key,
        case when links.invoice_id is not null then 'explicit_ref' end as match_rule,
        customers.customer_id,
        invoices.billing_customer_id as system_customer_key,
        invoices.amount,
        invoices.currency,
        invoices.status,
        invoices.system_status,
        cast(null as date) as issued_at,
        invoices.due_at,
        invoices.amount_paid,
        cast(null as text) as system_order_key,
        invoices.created_at,
        invoices.updated_at,
        invoices._extracted_at
    from {{ ref('stg_billing__invoices') }} as invoices
    left join links on invoices.billing_invoice_id = links.billing_invoice_id
    left join customers
        on customers.system = 'billing' and invoices.billing_customer_id = customers.system_key
    where not invoices._deleted
),

unioned as (
    select * from erp
    union all
    select * from billing
),

ranked as (
    select
        *,
        case
            when invoice_id is not null
                then row_number() over (
                    partition by invoice_id, system order by created_at nulls last, length(system_key), system_key
                )
        end as duplicate_rank
    from unioned
)

select
    invoice_id,
    system,
    system_key,
    match_rule,
    case when invoice_id is null then 'unmatched' else 'matched' end as match_status,
    duplicate_rank,
    coalesce(duplicate_rank > 1, false) as is_duplicate,
    customer_id,
    system_customer_key,
    amount,
    currency,
    status,
    system_status,
    issued_at,
    due_at,
    amount_paid,
    system_order_key,
    created_at,
    updated_at,
    _extracted_at
from ranked
