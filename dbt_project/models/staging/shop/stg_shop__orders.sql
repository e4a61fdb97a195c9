-- why: shop orders, the master of orders, latest version per id; the shop is the source of
-- truth for an order's customer, date, amount and currency (not its fulfilment status).
{{ config(unique_key='shop_order_id') }}

with

source as (
    {{ latest_raw('shop', 'orders') }}
),

currencies as (
    select code
    from {{ ref('currencies') }}
),

status_map as (
    select
        system_status,
        status
    from {{ ref('order_status_map') }}
    where system = 'shop'
),

renamed as (
    select
        -- ids
        source._record ->> 'id' as shop_order_id,
        source._record ->> 'name' as order_name,
        {{ clean_text("source._record -> 'customer' ->> 'id'") }} as shop_customer_id,

        -- amounts
        {{ decimal_string("source._record ->> 'total_price'") }} as amount,
        currencies.code as currency,
        source._record ->> 'currency' as system_currency,

        -- status
        source._record ->> 'financial_status' as financial_status,
        coalesce(source._record ->> 'fulfillment_status', 'unfulfilled') as system_status,
        case
            when source._record ->> 'cancelled_at' is not null then 'cancelled'
            when source._record ->> 'closed_at' is not null then 'closed'
            else status_map.status
        end as status,

        -- lines
        coalesce(source._record -> 'line_items', '[]'::jsonb) as line_items,

        -- timestamps
        {{ berlin_date(from_iso("source._record ->> 'created_at'")) }} as ordered_at,
        {{ from_iso("source._record ->> 'created_at'") }} as created_at,
        {{ from_iso("source._record ->> 'updated_at'") }} as updated_at,
        {{ from_iso("source._record ->> 'cancelled_at'") }} as cancelled_at,
        {{ from_iso("source._record ->> 'closed_at'") }} as closed_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    left join currencies on upper(source._record ->> 'currency') = currencies.code
    left join status_map
        on coalesce(source._record ->> 'fulfillment_status', 'unfulfilled') = status_map.system_status
)

select * from renamed
