-- why: ERP invoices, master of invoices and their amounts and dates, latest version per
-- invoice_no; the ERP status is kept for comparison only, billing owns an invoice's status.
{{ config(unique_key='invoice_no') }}

with

source as (
    {{ latest_raw('erp', 'invoices') }}
),

currencies as (
    select code
    from {{ ref('currencies') }}
),

status_map as (
    select
        system_status,
        status
    from {{ ref('invoice_status_map') }}
    where system = 'erp'
),

renamed as (
    select
        -- ids
        source._record ->> 'invoice_no' as invoice_no,
        {{ clean_text("source._record ->> 'customer_no'") }} as customer_no,
        {{ clean_text("source._record ->> 'order_no'") }} as order_no,

        -- amounts
        {{ decimal_string("source._record ->> 'total_amount'") }} as amount,
        {{ decimal_string("source._record ->> 'tax_amount'") }} as tax_amount,
        currencies.code as currency,
        source._record ->> 'currency' as system_currency,

        -- status
        source._record ->> 'status' as system_status,
        status_map.status,

        -- timestamps
        cast(nullif(source._record ->> 'issued_on', '') as date) as issued_at,
        cast(nullif(source._record ->> 'due_on', '') as date) as due_at,
        {{ from_erp_local("source._record ->> 'modified_at'") }} as updated_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    left join currencies on upper(source._record ->> 'currency') = currencies.code
    left join status_map on source._record ->> 'status' = status_map.system_status
)

select * from renamed
