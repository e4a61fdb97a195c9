-- why: every system's copy of every order in canonical vocabulary; shop orders define orders,
-- ERP sales orders join them by their shop_order_id. Customers are resolved to canonical ids
-- through the customer crosswalk, so systems are compared in one id space.
{#
    Incremental: a run recomputes only the rows that can have changed, and writes them by
    delete+insert on (system, system_key):
      - records with a staging version newer than any this table has taken in, per system
        (deletions included: the post-hook removes the rows of records deleted at the source);
      - ERP orders that name a shop order with a new version (it may have appeared or gone);
      - rows whose customer the crosswalk now resolves to another canonical customer;
      - every row of an (order_id, system) group one of those rows leaves or joins, so
        duplicate_rank is ranked over the whole group.
    A full refresh computes every row the same way; test_incremental and
    bench/transform.py --check-full compare the two.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['system', 'system_key'],
        indexes=[
            {'columns': ['order_id', 'system']},
            {'columns': ['system', 'system_key']},
            {'columns': ['system', '_extracted_at']},
        ],
        post_hook=[
            "{{ delete_deleted_records(this, 'shop', ref('stg_shop__orders'), 'shop_order_id') }}",
            "{{ delete_deleted_records(this, 'erp', ref('stg_erp__sales_orders'), 'order_no') }}",
        ],
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

{%- if is_incremental() %}

    touched as (
        select
            'shop' as system,
            shop_versions.shop_order_id as system_key
        from {{ ref('stg_shop__orders') }} as shop_versions
        where shop_versions._extracted_at > {{ taken_in_until(this, 'shop') }}
        union
        select
            'erp' as system,
            erp_versions.order_no as system_key
        from {{ ref('stg_erp__sales_orders') }} as erp_versions
        where
            erp_versions._extracted_at > {{ taken_in_until(this, 'erp') }}
            or erp_versions.shop_order_id in (
                select shop_versions.shop_order_id from {{ ref('stg_shop__orders') }} as shop_versions
                where shop_versions._extracted_at > {{ taken_in_until(this, 'shop') }}
            )
        union
        {{ rekeyed_rows(this) }}
    ),

    touched_groups as (
        {{ groups_left(this, 'order_id') }}
        union
        select
            {{ surrogate_key('touched.system_key') }} as order_id,
            'shop' as system
        from touched
        where touched.system = 'shop'
        union
        select
            {{ surrogate_key('live.shop_order_id') }} as order_id,
            'erp' as system
        from touched
        inner join {{ ref('stg_erp__sales_orders') }} as sales_orders
            on touched.system = 'erp' and touched.system_key = sales_orders.order_no
        inner join {{ ref('stg_shop__orders') }} as live
            on sales_orders.shop_order_id = live.shop_order_id and not live._deleted
    ),

    affected as (
        {{ affected_rows(this, 'order_id') }}
    ),
{%- endif %}

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
    where
        not orders._deleted
        {%- if is_incremental() %}
            and orders.shop_order_id in (
                select affected.system_key from affected
                where affected.system = 'shop'
            )
        {%- endif %}
),

erp as (
    select
        {{ surrogate_key('live.shop_order_id') }} as order_id,
        'erp' as system,
        sales_orders.order_no as system_key,
        case when live.shop_order_id is not null then 'explicit_ref' end as match_rule,
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
    -- the shop order it names, when the shop holds it: that order is its order
    left join {{ ref('stg_shop__orders') }} as live
        on sales_orders.shop_order_id = live.shop_order_id and not live._deleted
    left join customers on customers.system = 'erp' and sales_orders.customer_no = customers.system_key
    where
        not sales_orders._deleted
        {%- if is_incremental() %}
            and sales_orders.order_no in (
                select affected.system_key from affected
                where affected.system = 'erp'
            )
        {%- endif %}
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
    _extracted_at,
    now() as _loaded_at
from ranked
