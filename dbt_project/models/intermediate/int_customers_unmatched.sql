-- why: the customer records identity resolution would not link, kept in plain sight with
-- the reason and the parties they could belong to; reconcile reports them, nobody guesses.

select
    crosswalk.system,
    crosswalk.system_key,
    crosswalk.match_status,
    case
        when crosswalk.match_status = 'ambiguous'
            then 'more than one customer by rule ' || crosswalk.ambiguous_rule
        else 'no customer by explicit reference, email, VAT number or phone'
    end as reason,
    crosswalk.candidate_ids,
    records.name,
    records.email,
    records.phone,
    records.vat_number,
    records.erp_ref
from {{ ref('int_customers_crosswalk') }} as crosswalk
inner join {{ ref('int_customer_records') }} as records
    on crosswalk.system = records.system and crosswalk.system_key = records.system_key
where crosswalk.match_status <> 'matched'
