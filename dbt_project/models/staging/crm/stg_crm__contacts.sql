-- why: CRM contacts in canonical vocabulary, latest version per id; CRM is the source of
-- truth for email and phone. Values stay as the CRM holds them: never normalised here.
{{ config(unique_key='contact_id') }}

with

source as (
    {{ latest_raw('crm', 'contacts') }}
),

countries as (
    select
        code,
        name
    from {{ ref('countries') }}
),

renamed as (
    select
        -- ids
        source._record ->> 'id' as contact_id,
        {{ clean_text("source._record -> 'properties' ->> 'erp_customer_no'") }} as erp_customer_no,

        -- attributes
        nullif(
            concat_ws(
                ' ', source._record -> 'properties' ->> 'firstname', source._record -> 'properties' ->> 'lastname'
            ),
            ''
        ) as name,
        source._record -> 'properties' ->> 'email' as email,
        source._record -> 'properties' ->> 'phone' as phone,
        source._record -> 'properties' ->> 'company' as company,
        source._record -> 'properties' ->> 'address' as street,
        source._record -> 'properties' ->> 'zip' as postcode,
        source._record -> 'properties' ->> 'city' as city,
        coalesce(countries.code, country_codes.code) as country,
        source._record -> 'properties' ->> 'country' as system_country,
        source._record -> 'properties' ->> 'vat_number' as vat_number,
        coalesce((source._record ->> 'archived')::boolean, false) as is_archived,

        -- timestamps
        {{ from_iso("source._record ->> 'createdAt'") }} as created_at,
        {{ from_iso("source._record ->> 'updatedAt'") }} as updated_at,

        -- lineage
        source._record_hash,
        source._extracted_at,
        source._deleted
    from source
    left join countries on lower(source._record -> 'properties' ->> 'country') = lower(countries.name)
    -- a CRM that holds the ISO code itself
    left join countries as country_codes on upper(source._record -> 'properties' ->> 'country') = country_codes.code
)

select * from renamed
