-- why: shop customers in canonical vocabulary, latest version per id; the ERP reference
-- hides in the tags ("erp:C-000123") and is lifted out here, nothing else is inferred.
{{ config(unique_key='shop_customer_id') }}

with

source as (
    {{ latest_raw('shop', 'customers') }}
),

renamed as (
    select
        -- ids
        _record ->> 'id' as shop_customer_id,
        substring(_record ->> 'tags' from 'erp:\s*([A-Za-z0-9_-]+)') as erp_customer_no,

        -- attributes
        nullif(concat_ws(' ', _record ->> 'first_name', _record ->> 'last_name'), '') as name,
        _record ->> 'email' as email,
        _record ->> 'phone' as phone,
        _record -> 'default_address' ->> 'address1' as street,
        _record -> 'default_address' ->> 'zip' as postcode,
        _record -> 'default_address' ->> 'city' as city,
        _record -> 'default_address' ->> 'country_code' as country,
        _record ->> 'tags' as tags,

        -- timestamps
        {{ from_iso("_record ->> 'created_at'") }} as created_at,
        {{ from_iso("_record ->> 'updated_at'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at,
        _deleted
    from source
)

select * from renamed
