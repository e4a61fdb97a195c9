-- why: shop products at variant grain (one row per product and sku), latest version per
-- product id; the shop's price is compared with the ERP's, never taken as truth.
{{ config(unique_key='shop_product_id') }}

with

source as (
    {{ latest_raw('shop', 'products') }}
),

renamed as (
    select
        -- ids
        source._record ->> 'id' as shop_product_id,
        variant.position as variant_position,
        variant.doc ->> 'sku' as sku,

        -- attributes
        source._record ->> 'title' as name,

        -- amounts
        {{ decimal_string("variant.doc ->> 'price'") }} as price,

        -- timestamps
        {{ from_iso("source._record ->> 'updated_at'") }} as updated_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    cross join lateral jsonb_array_elements(
        coalesce(source._record -> 'variants', '[]'::jsonb)
    ) with ordinality as variant (doc, position)
)

select * from renamed
