-- why: the lines of every canonical order as the shop (the master of orders) holds them.
-- Incremental per order: when anything on an order's lines changes, all its lines are
-- replaced together, so a removed line never lingers; the lines of an order that no longer
-- exists are deleted with it.
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        post_hook="delete from {{ this }} as lines where not exists (
            select 1 from {{ ref('orders') }} as orders where orders.order_id = lines.order_id
        )",
    )
}}

with

orders as (
    select
        orders.order_id,
        orders.currency,
        shop_orders.line_items
    from {{ ref('orders') }} as orders
    inner join {{ ref('stg_shop__orders') }} as shop_orders on orders.shop_id = shop_orders.shop_order_id
),

products as (
    select
        product_id,
        system_key as sku
    from {{ ref('int_products_by_system') }}
    where system = 'erp'
),

lines as (
    select
        orders.order_id,
        cast(line.position as integer) as line_number,
        line.doc ->> 'id' as shop_line_item_id,
        line.doc ->> 'sku' as sku,
        products.product_id,
        cast(line.doc ->> 'quantity' as numeric) as quantity,
        {{ decimal_string("line.doc ->> 'price'") }} as unit_price,
        orders.currency
    from orders
    cross join lateral jsonb_array_elements(orders.line_items) with ordinality as line (doc, position)
    left join products on line.doc ->> 'sku' = products.sku
),

final as (
    select
        {{ surrogate_key("order_id || '-' || line_number") }} as order_line_id,
        *,
        quantity * unit_price as amount,
        md5(string_agg(
            concat_ws('|', line_number, shop_line_item_id, sku, product_id, quantity, unit_price, currency), ';'
        ) over (
            partition by order_id order by line_number rows between unbounded preceding and unbounded following
        )) as _order_lines_hash,
        now() as _loaded_at
    from lines
)

select final.*
from final
{% if is_incremental() -%}
    where not exists (
        select 1 from {{ this }} as current_rows
        where
            current_rows.order_id = final.order_id
            and current_rows._order_lines_hash = final._order_lines_hash
    )
{%- endif %}
