-- why: every live customer record of the four systems in one shape, with the explicit
-- cross-references each carries and the normalised forms identity resolution matches on.
-- Archived, deleted or vanished (extract's _deleted) records are left out: they no longer exist.

with

crm as (
    select
        'crm' as system,
        contact_id as system_key,
        erp_customer_no as erp_ref,
        cast(null as text) as crm_ref,
        cast(null as text) as billing_ref,
        name,
        email,
        phone,
        street,
        postcode,
        city,
        country,
        vat_number,
        created_at,
        updated_at,
        _extracted_at
    from {{ ref('stg_crm__contacts') }}
    where not is_archived and not _deleted
),

erp as (
    select
        'erp' as system,
        customer_no as system_key,
        customer_no as erp_ref,
        crm_contact_id as crm_ref,
        billing_customer_id as billing_ref,
        name,
        email,
        phone,
        street,
        postcode,
        city,
        country,
        vat_number,
        cast(null as timestamptz) as created_at,
        updated_at,
        _extracted_at
    from {{ ref('stg_erp__customers') }}
    where not _deleted
),

billing as (
    select
        'billing' as system,
        billing_customer_id as system_key,
        erp_customer_no as erp_ref,
        cast(null as text) as crm_ref,
        cast(null as text) as billing_ref,
        name,
        email,
        phone,
        street,
        postcode,
        city,
        country,
        cast(null as text) as vat_number,
        created_at,
        updated_at,
        _extracted_at
    from {{ ref('stg_billing__customers') }}
    where not is_deleted and not _deleted
),

shop as (
    select
        'shop' as system,
        shop_customer_id as system_key,
        erp_customer_no as erp_ref,
        cast(null as text) as crm_ref,
        cast(null as text) as billing_ref,
        name,
        email,
        phone,
        street,
        postcode,
        city,
        country,
        cast(null as text) as vat_number,
        created_at,
        updated_at,
        _extracted_at
    from {{ ref('stg_shop__customers') }}
    where not _deleted
),

unioned as (
    select * from crm
    union all
    select * from erp
    union all
    select * from billing
    union all
    select * from shop
)

select
    *,
    {{ normalize_email('email') }} as email_norm,
    {{ normalize_phone('phone') }} as phone_norm,
    {{ normalize_vat('vat_number') }} as vat_norm,
    {{ normalize_name('name') }} as name_norm
from unioned
