-- why: ERP sales orders, latest version per order_no; the ERP owns an order's fulfilment
-- status, mapped here to the canonical vocabulary by the order_status_map seed.
{{ config(unique_key='order_no') }}

with

source as (
    {{ latest_raw('erp', 'sales_orders') }}
),

status_map as (
    select
        system_status,
        status
    from {{ ref('order_status_map') }}
    where system = 'erp'
),

renamed as (
    select
        -- ids
        source._record ->> 'order_no' as order_no,
        {{ clean_text("source._record ->> 'customer_no'") }} as customer_no,
        {{ clean_text("source._record ->> 'shop_order_id'") }} as shop_order_id,

        -- amounts
        {{ decimal_string("source._record ->> 'total'") }} as amount,
        upper(source._record ->> 'currency') as currency,

        -- status
        source._record ->> 'status' as system_status,
        status_map.status,

        -- lines
        coalesce(source._record -> 'lines', '[]'::jsonb) as lines,

        -- timestamps
        (nullif(source._record ->> 'order_date', ''))::date as ordered_at,
        {{ from_erp_local("source._record ->> 'modified_at'") }} as updated_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    left join status_map on source._record ->> 'status' = status_map.system_status
)

select * from renamed
