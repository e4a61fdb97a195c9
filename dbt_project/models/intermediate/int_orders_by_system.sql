-- why: every system's copy of every order in canonical vocabulary; shop orders define orders,
-- ERP sales orders join them by their shop_order_id. Customers are resolved to canonical ids
-- through the customer crosswalk, so systems are compared in one id space.
-- Incremental by difference: every run computes the whole table (identity resolution can
-- re-key any row), and only the rows that differ are written.
{{
    config(
        materialized='incremental',
        incremental_strategy='diff',
        unique_key=['system', 'system_key'],
        indexes=[{'columns': ['order_id', 'system']}, {'columns': ['system', 'system_key']}],
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

shop as (
    select
        {{ surrogate_key('orders.shop_order_id') }} as order_id,
        'shop' as system,
        orders.shop_order_id as system_key,
        'master' as match_rule,
        customers.customer_id,
        orders.shop_customer_id as system_customer_key,
        orders.ordered_at,
        orders.amount,
        orders.currency,
        orders.status,
        orders.system_status,
        orders.updated_at,
        orders._extracted_at
    from {{ ref('stg_shop__orders') }} as orders
    left join customers on customers.system = 'shop' and orders.shop_customer_id = customers.system_key
    where not orders._deleted
),

erp as (
    select
        shop.order_id,
        'erp' as system,
        sales_orders.order_no as system_key,
        case when shop.order_id is not null then 'explicit_ref' end as match_rule,
        customers.customer_id,
        sales_orders.customer_no as system_customer_key,
        sales_orders.ordered_at,
        sales_orders.amount,
        sales_orders.currency,
        sales_orders.status,
        sales_orders.system_status,
        sales_orders.updated_at,
        sales_orders._extracted_at
    from {{ ref('stg_erp__sales_orders') }} as sales_orders
    left join shop on sales_orders.shop_order_id = shop.system_key
    left join customers on customers.system = 'erp' and sales_orders.customer_no = customers.system_key
    where not sales_orders._deleted
),

unioned as (
    select * from shop
    union all
    select * from erp
),

ranked as (
    select
        *,
        case
            when order_id is not null
                then row_number() over (partition by order_id, system order by length(system_key), system_key)
        end as duplicate_rank
    from unioned
)

select
    order_id,
    system,
    system_key,
    match_rule,
    case when order_id is null then 'unmatched' else 'matched' end as match_status,
    duplicate_rank,
    coalesce(duplicate_rank > 1, false) as is_duplicate,
    customer_id,
    system_customer_key,
    ordered_at,
    amount,
    currency,
    status,
    system_status,
    updated_at,
    _extracted_at
from ranked
