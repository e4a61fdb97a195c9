-- why: the lines of every canonical order as the shop (the master of orders) holds them.
-- Incremental per order: an order's lines are a function of its currency, its shop line items,
-- the catalogue's sku -> product mapping and this file, so a run expands only the orders where
-- one of those changed, and replaces all of such an order's lines together (a removed line never
-- lingers); the lines of an order that no longer exists are deleted with it.
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_unmatched('order_id', ref('orders')) }}",
    )
}}

with

products as (
    select
        product_id,
        system_key as sku
    from {{ ref('int_products_by_system') }}
    where system = 'erp'
),

orders as (
    select
        orders.order_id,
        orders.currency,
        shop_orders.line_items,
        -- and this file's checksum, so an edit to how lines are derived re-derives every order
        md5(concat_ws(
            '|',
            '{{ model.checksum.checksum }}',
            orders.currency,
            cast(shop_orders.line_items as text)
        )) as _order_source_hash
    from {{ ref('orders') }} as orders
    inner join {{ ref('stg_shop__orders') }} as shop_orders on orders.shop_id = shop_orders.shop_order_id
),

changed as (
    select orders.*
    from orders
    {% if is_incremental() -%}
        where
            -- its currency or line items changed, or it is new
            not exists (
                select 1 from {{ this }} as current_rows
                where
                    current_rows.order_id = orders.order_id
                    and current_rows._order_source_hash = orders._order_source_hash
            )
            -- or its lines point at a product the catalogue now maps differently (or no longer has)
            or orders.order_id in (
                select current_rows.order_id
                from {{ this }} as current_rows
                left join products on current_rows.sku = products.sku
                where current_rows.product_id is distinct from products.product_id
            )
    {%- endif %}
),

lines as (
    select
        changed.order_id,
        cast(line.position as integer) as line_number,
        line.doc ->> 'id' as shop_line_item_id,
        line.doc ->> 'sku' as sku,
        products.product_id,
        cast(line.doc ->> 'quantity' as numeric) as quantity,
        {{ decimal_string("line.doc ->> 'price'") }} as unit_price,
        changed.currency,
        changed._order_source_hash
    from changed
    cross join lateral jsonb_array_elements(changed.line_items) with ordinality as line (doc, position)
    left join products on line.doc ->> 'sku' = products.sku
)

select
    {{ surrogate_key("order_id || '-' || line_number") }} as order_line_id,
    order_id,
    line_number,
    shop_line_item_id,
    sku,
    product_id,
    quantity,
    unit_price,
    currency,
    quantity * unit_price as amount,
    _order_source_hash,
    now() as _loaded_at
from lines
