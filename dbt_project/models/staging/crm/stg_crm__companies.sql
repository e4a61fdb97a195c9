-- why: CRM companies, latest version per id; kept for VAT lookups and analysts, no
-- canonical entity is mastered here.
{{ config(unique_key='company_id') }}

with

source as (
    {{ latest_raw('crm', 'companies') }}
),

renamed as (
    select
        -- ids
        _record ->> 'id' as company_id,

        -- attributes
        _record -> 'properties' ->> 'name' as name,
        _record -> 'properties' ->> 'domain' as domain,
        _record -> 'properties' ->> 'vat_number' as vat_number,
        coalesce((_record ->> 'archived')::boolean, false) as is_archived,

        -- timestamps
        {{ from_iso("_record ->> 'createdAt'") }} as created_at,
        {{ from_iso("_record ->> 'updatedAt'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at,
        _deleted
    from source
)

select * from renamed
