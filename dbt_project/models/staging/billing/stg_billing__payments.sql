-- why: payments, latest version per id; billing is the only system that sees them, so this
-- is the whole truth about money received. Amounts become numeric major units.
{{ config(unique_key='payment_no') }}

with

source as (
    {{ latest_raw('billing', 'payments') }}
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
    from {{ ref('payment_status_map') }}
    where system = 'billing'
),

renamed as (
    select
        -- ids
        source._record ->> 'id' as payment_no,
        {{ clean_text("source._record ->> 'customer'") }} as billing_customer_id,
        {{ clean_text("source._record ->> 'invoice'") }} as billing_invoice_id,

        -- amounts
        {{ minor_to_major("source._record ->> 'amount'", 'currencies.minor_unit') }} as amount,
        upper(source._record ->> 'currency') as currency,

        -- status
        source._record ->> 'status' as system_status,
        status_map.status,

        -- timestamps
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
