-- why: CRM contacts in canonical vocabulary, latest version per id; CRM is the source of
-- truth for email and phone. Values stay as the CRM holds them: never normalised here.
{{ config(unique_key='contact_id') }}

with

source as (
    {{ latest_raw('crm', 'contacts') }}
),

renamed as (
    select
        -- ids
        _record ->> 'id' as contact_id,
        {{ clean_text("_record -> 'properties' ->> 'erp_customer_no'") }} as erp_customer_no,

        -- attributes
        nullif(
            concat_ws(' ', _record -> 'properties' ->> 'firstname', _record -> 'properties' ->> 'lastname'), ''
        ) as name,
        _record -> 'properties' ->> 'email' as email,
        _record -> 'properties' ->> 'phone' as phone,
        _record -> 'properties' ->> 'company' as company,
        _record -> 'properties' ->> 'address' as street,
        _record -> 'properties' ->> 'zip' as postcode,
        _record -> 'properties' ->> 'city' as city,
        _record -> 'properties' ->> 'country' as country,
        _record -> 'properties' ->> 'vat_number' as vat_number,
        coalesce((_record ->> 'archived')::boolean, false) as is_archived,

        -- timestamps
        {{ from_iso("_record ->> 'createdAt'") }} as created_at,
        {{ from_iso("_record ->> 'updatedAt'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at
    from source
)

select * from renamed
