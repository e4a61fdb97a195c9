-- why: which CRM contact, ERP customer, billing customer and shop customer are the same party,
-- one row per record with the rule that linked it. Rules run strictly in order (explicit
-- reference, then email, then VAT number with the same name, or phone); a record two parties
-- could claim is left ambiguous and one no party claims unmatched: nothing is ever guessed.

with

records as (
    select * from {{ ref('int_customer_records') }}
),

masters as (
    select
        system_key as customer_no,
        {{ surrogate_key('system_key') }} as customer_id,
        crm_ref,
        billing_ref,
        email_norm,
        phone_norm,
        vat_norm,
        name_norm
    from records
    where system = 'erp'
),

candidates as (
    select * from records
    where system <> 'erp'
),

-- what each ERP customer names as its record in another system, one row per system, so the
-- link below is one equi-join (an OR in a join is a nested loop over every pair)
master_refs as (
    select
        masters.customer_id,
        refs.system,
        refs.system_key
    from masters
    cross join
        lateral (
            values ('crm', masters.crm_ref), ('billing', masters.billing_ref)
        ) as refs (system, system_key)
    where refs.system_key is not null
),

-- rule 1: an explicit reference, from the record to its ERP customer or from the ERP customer to it
explicit_links as (
    select
        candidates.system,
        candidates.system_key,
        masters.customer_id
    from candidates
    inner join masters on candidates.erp_ref = masters.customer_no
    union
    select
        candidates.system,
        candidates.system_key,
        master_refs.customer_id
    from candidates
    inner join master_refs
        on
            candidates.system = master_refs.system
            and candidates.system_key = master_refs.system_key
),

explicit_resolved as (
    select
        system,
        system_key,
        min(customer_id) as customer_id,
        count(distinct customer_id) as n_candidates,
        array_agg(distinct customer_id order by customer_id) as candidate_ids
    from explicit_links
    group by system, system_key
),

linked_by_ref as (
    select * from explicit_resolved
    where n_candidates = 1
),

-- what each party is known by after rule 1: its ERP record and every record linked to it
known_after_ref as (
    select
        customer_id,
        email_norm,
        phone_norm,
        vat_norm,
        name_norm
    from masters
    union all
    select
        linked_by_ref.customer_id,
        candidates.email_norm,
        candidates.phone_norm,
        candidates.vat_norm,
        candidates.name_norm
    from linked_by_ref
    inner join candidates
        on linked_by_ref.system = candidates.system and linked_by_ref.system_key = candidates.system_key
),

-- rule 2: the normalised email of exactly one party
after_ref as (
    select candidates.*
    from candidates
    left join explicit_resolved
        on candidates.system = explicit_resolved.system and candidates.system_key = explicit_resolved.system_key
    where explicit_resolved.system_key is null
),

email_resolved as (
    select
        after_ref.system,
        after_ref.system_key,
        min(known.customer_id) as customer_id,
        count(distinct known.customer_id) as n_candidates,
        array_agg(distinct known.customer_id order by known.customer_id) as candidate_ids
    from after_ref
    inner join known_after_ref as known on after_ref.email_norm = known.email_norm
    group by after_ref.system, after_ref.system_key
),

known_after_email as (
    select * from known_after_ref
    union all
    select
        email_resolved.customer_id,
        after_ref.email_norm,
        after_ref.phone_norm,
        after_ref.vat_norm,
        after_ref.name_norm
    from email_resolved
    inner join after_ref
        on email_resolved.system = after_ref.system and email_resolved.system_key = after_ref.system_key
    where email_resolved.n_candidates = 1
),

-- rule 3: the VAT number and name, or the phone, of exactly one party (a VAT number alone names
-- a company, and a company has many contacts)
after_email as (
    select after_ref.*
    from after_ref
    left join email_resolved
        on after_ref.system = email_resolved.system and after_ref.system_key = email_resolved.system_key
    where email_resolved.system_key is null
),

weak_links as (
    select
        after_email.system,
        after_email.system_key,
        known.customer_id,
        'vat_number' as match_rule
    from after_email
    inner join known_after_email as known
        on after_email.vat_norm = known.vat_norm and after_email.name_norm = known.name_norm
    union
    select
        after_email.system,
        after_email.system_key,
        known.customer_id,
        'phone' as match_rule
    from after_email
    inner join known_after_email as known on after_email.phone_norm = known.phone_norm
),

weak_resolved as (
    select
        system,
        system_key,
        min(customer_id) as customer_id,
        min(match_rule) as match_rule,
        count(distinct customer_id) as n_candidates,
        array_agg(distinct customer_id order by customer_id) as candidate_ids
    from weak_links
    group by system, system_key
),

resolved as (
    select
        'erp' as system,
        customer_no as system_key,
        customer_id,
        'master' as match_rule,
        'matched' as match_status,
        array[customer_id] as candidate_ids
    from masters
    union all
    select
        system,
        system_key,
        case when n_candidates = 1 then customer_id end as customer_id,
        'explicit_ref' as match_rule,
        case when n_candidates = 1 then 'matched' else 'ambiguous' end as match_status,
        candidate_ids
    from explicit_resolved
    union all
    select
        system,
        system_key,
        case when n_candidates = 1 then customer_id end as customer_id,
        'email' as match_rule,
        case when n_candidates = 1 then 'matched' else 'ambiguous' end as match_status,
        candidate_ids
    from email_resolved
    union all
    select
        system,
        system_key,
        case when n_candidates = 1 then customer_id end as customer_id,
        match_rule,
        case when n_candidates = 1 then 'matched' else 'ambiguous' end as match_status,
        candidate_ids
    from weak_resolved
),

all_records as (
    select
        records.system,
        records.system_key,
        resolved.customer_id,
        case when resolved.match_status = 'matched' then resolved.match_rule end as match_rule,
        coalesce(resolved.match_status, 'unmatched') as match_status,
        case when resolved.match_status = 'ambiguous' then resolved.match_rule end as ambiguous_rule,
        coalesce(resolved.candidate_ids, array[]::text[]) as candidate_ids,
        records.created_at,
        records._extracted_at
    from records
    left join resolved
        on records.system = resolved.system and records.system_key = resolved.system_key
),

ranked as (
    select
        *,
        case
            when customer_id is not null
                then row_number() over (
                    partition by customer_id, system
                    order by
                        case match_rule
                            when 'master' then 0 when 'explicit_ref' then 1 when 'email' then 2
                            when 'vat_number' then 3 else 4
                        end,
                        created_at nulls last,
                        length(system_key),
                        system_key
                )
        end as duplicate_rank
    from all_records
)

select
    system,
    system_key,
    customer_id,
    match_rule,
    match_status,
    ambiguous_rule,
    candidate_ids,
    duplicate_rank,
    coalesce(duplicate_rank > 1, false) as is_duplicate,
    _extracted_at
from ranked
