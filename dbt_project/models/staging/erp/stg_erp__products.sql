-- why: the ERP catalogue, master of products and their prices, latest version per sku;
-- prices become numeric in the currency's major unit.
{{ config(unique_key='sku') }}

with

source as (
    {{ latest_raw('erp', 'products') }}
),

renamed as (
    select
        -- ids
        _record ->> 'sku' as sku,

        -- attributes
        _record ->> 'description' as name,
        coalesce((_record ->> 'active')::boolean, true) as is_active,

        -- amounts
        {{ decimal_string("_record ->> 'unit_price'") }} as price,
        upper(_record ->> 'currency') as currency,

        -- timestamps
        {{ from_erp_local("_record ->> 'modified_at'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at,
        _deleted
    from source
)

select * from renamed
