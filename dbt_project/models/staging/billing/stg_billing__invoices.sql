-- why: billing invoices, latest version per id; billing is the source of truth for an
-- invoice's status. Integer minor units become numeric major units via the currencies seed.
{{ config(unique_key='billing_invoice_id') }}

with

source as (
    {{ latest_raw('billing', 'invoices') }}
),

currencies as (
    select
        code,
        minor_unit
    from {{ ref('currencies') }}
),

status_map as (
    select
        system_status,
        status
    from {{ ref('invoice_status_map') }}
    where system = 'billing'
),

renamed as (
    select
        -- ids
        source._record ->> 'id' as billing_invoice_id,
        {{ clean_text("source._record ->> 'customer'") }} as billing_customer_id,
        {{ clean_text("source._record -> 'metadata' ->> 'erp_invoice_no'") }} as erp_invoice_no,

        -- amounts
        {{ minor_to_major("source._record ->> 'amount_due'", 'currencies.minor_unit') }} as amount,
        {{ minor_to_major("source._record ->> 'amount_paid'", 'currencies.minor_unit') }} as amount_paid,
        currencies.code as currency,
        source._record ->> 'currency' as system_currency,

        -- status
        source._record ->> 'status' as system_status,
        status_map.status,

        -- timestamps
        {{ berlin_date(from_epoch("nullif(source._record ->> 'due_date', '')")) }} as due_at,
        {{ from_epoch("source._record ->> 'created'") }} as created_at,
        {{ from_epoch("source._record ->> 'updated'") }} as updated_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    left join currencies on upper(source._record ->> 'currency') = currencies.code
    left join status_map on source._record ->> 'status' = status_map.system_status
)

select * from renamed
