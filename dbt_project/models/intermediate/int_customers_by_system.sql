-- why: every system's copy of every customer in canonical vocabulary, side by side with the
-- customer it belongs to; the contract reconcile compares against canonical.customers.
-- Values are as each system holds them (never normalised); unmatched records have no customer_id.
-- Incremental by difference: every run computes the whole table (identity resolution can
-- re-key any row), and only the rows that differ are written.
{{
    config(
        materialized='incremental',
        incremental_strategy='diff',
        unique_key=['system', 'system_key'],
        indexes=[{'columns': ['customer_id', 'system']}, {'columns': ['system', 'system_key']}],
    )
}}

select
    crosswalk.customer_id,
    crosswalk.system,
    crosswalk.system_key,
    crosswalk.match_rule,
    crosswalk.match_status,
    crosswalk.duplicate_rank,
    crosswalk.is_duplicate,
    records.name,
    records.email,
    records.phone,
    records.street,
    records.postcode,
    records.city,
    records.country,
    records.vat_number,
    records.updated_at,
    records._extracted_at
from {{ ref('int_customers_crosswalk') }} as crosswalk
inner join {{ ref('int_customer_records') }} as records
    on crosswalk.system = records.system and crosswalk.system_key = records.system_key
