-- why: every system's copy of every product in canonical vocabulary; the ERP catalogue
-- defines products, shop variants join it by sku. A sku the ERP lacks stays with no product_id.
{{ config(indexes=[{'columns': ['product_id', 'system']}, {'columns': ['system', 'system_key']}]) }}

with

erp as (
    select
        {{ surrogate_key('sku') }} as product_id,
        'erp' as system,
        sku as system_key,
        sku as system_record_id,
        'master' as match_rule,
        name,
        price,
        currency,
        is_active,
        updated_at,
        _extracted_at
    from {{ ref('stg_erp__products') }}
    where not _deleted
),

shop as (
    select
        erp.product_id,
        'shop' as system,
        variants.sku as system_key,
        variants.shop_product_id as system_record_id,
        case when erp.product_id is not null then 'sku' end as match_rule,
        variants.name,
        variants.price,
        cast(null as text) as currency,
        cast(null as boolean) as is_active,
        variants.updated_at,
        variants._extracted_at
    from {{ ref('stg_shop__products') }} as variants
    left join erp on variants.sku = erp.system_key
    where not variants._deleted
),

unioned as (
    select * from erp
    union all
    select * from shop
)

select
    product_id,
    system,
    system_key,
    system_record_id,
    match_rule,
    case when product_id is null then 'unmatched' else 'matched' end as match_status,
    case
        when product_id is not null
            then row_number() over (
                partition by product_id, system order by length(system_record_id), system_record_id
            )
    end as duplicate_rank,
    coalesce(
        row_number() over (
            partition by product_id, system order by length(system_record_id), system_record_id
        ) > 1 and product_id is not null,
        false
    ) as is_duplicate,
    name,
    price,
    currency,
    is_active,
    updated_at,
    _extracted_at
from unioned
