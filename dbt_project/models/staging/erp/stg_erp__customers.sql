-- why: ERP customers, the master list of customers, latest version per customer_no in
-- canonical vocabulary; values stay as the ERP holds them, never normalised here.
{{ config(unique_key='customer_no') }}

with

source as (
    {{ latest_raw('erp', 'customers') }}
),

renamed as (
    select
        -- ids
        _record ->> 'customer_no' as customer_no,
        {{ clean_text("_record ->> 'crm_contact_id'") }} as crm_contact_id,
        {{ clean_text("_record ->> 'billing_customer_id'") }} as billing_customer_id,

        -- attributes
        _record ->> 'name' as name,
        _record ->> 'email_address' as email,
        _record ->> 'phone_no' as phone,
        _record ->> 'street' as street,
        _record ->> 'postcode' as postcode,
        _record ->> 'city' as city,
        _record ->> 'country_code' as country,
        _record ->> 'vat_id' as vat_number,
        coalesce((_record ->> 'blocked')::boolean, false) as is_blocked,

        -- timestamps
        {{ from_erp_local("_record ->> 'modified_at'") }} as updated_at,

        -- lineage
        _record_hash,
        _extracted_at,
        _deleted
    from source
)

select * from renamed
