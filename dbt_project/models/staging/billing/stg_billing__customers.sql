-- why: billing customers in canonical vocabulary, latest version per id; deleted customers
-- are kept and flagged so identity resolution can leave them out, never silently dropped.
{{ config(unique_key='billing_customer_id') }}

with

source as (
    {{ latest_raw('billing', 'customers') }}
),

renamed as (
    select
        -- ids
        _record ->> 'id' as billing_customer_id,
        {{ clean_text("_record -> 'metadata' ->> 'erp_customer_no'") }} as erp_customer_no,

        -- attributes
        _record ->> 'name' as name,
        _record ->> 'email' as email,
        _record ->> 'phone' as phone,
        _record -> 'address' ->> 'line1' as street,
        _record -> 'address' ->> 'postal_code' as postcode,
        _record -> 'address' ->> 'city' as city,
        _record -> 'address' ->> 'country' as country,
        coalesce((_record ->> 'deleted')::boolean, false) as is_deleted,

        -- timestamps
        {{ from_epoch("_record ->> 'created'") }} as created_at,
        {{ from_epoch("_record ->> 'updated'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at,
        _deleted
    from source
)

select * from renamed
