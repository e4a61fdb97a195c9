-- why: every system's copy of every invoice in canonical vocabulary; ERP invoices define
-- invoices, billing invoices join them by metadata.erp_invoice_no. Customers are resolved to
-- canonical ids through the customer crosswalk, so both systems are compared in one id space.
{#
    Incremental, as int_orders_by_system: a run recomputes only the rows that can have changed
    and writes them by delete+insert on (system, system_key):
      - records with a staging version newer than any this table has taken in, per system
        (the post-hook removes the rows of records deleted at the source);
      - billing invoices that name an ERP invoice with a new version (it may have appeared or
        gone);
      - rows whose customer the crosswalk now resolves to another canonical customer;
      - every row of an (invoice_id, system) group one of those rows leaves or joins.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['system', 'system_key'],
        indexes=[
            {'columns': ['invoice_id', 'system']},
            {'columns': ['system', 'system_key']},
            {'columns': ['system', '_extracted_at']},
        ],
        post_hook=[
            "{{ delete_deleted_records(this, 'erp', ref('stg_erp__invoices'), 'invoice_no') }}",
            "{{ delete_deleted_records(this, 'billing', ref('stg_billing__invoices'), 'billing_invoice_id') }}",
        ],
    )
}}

with

customers as (
    select
        system,
        system_key,
        customer_id
    from {{ ref('int_customers_crosswalk') }}
),
{%- if is_incremental() %}

    touched as (
        select
            'erp' as system,
            erp_versions.invoice_no as system_key
        from {{ ref('stg_erp__invoices') }} as erp_versions
        where erp_versions._extracted_at > {{ taken_in_until(this, 'erp') }}
        union
        select
            'billing' as system,
            billing_versions.billing_invoice_id as system_key
        from {{ ref('stg_billing__invoices') }} as billing_versions
        where
            billing_versions._extracted_at > {{ taken_in_until(this, 'billing') }}
            or billing_versions.erp_invoice_no in (
                select erp_versions.invoice_no from {{ ref('stg_erp__invoices') }} as erp_versions
                where erp_versions._extracted_at > {{ taken_in_until(this, 'erp') }}
            )
        union
        {{ rekeyed_rows(this) }}
    ),

    touched_groups as (
        {{ groups_left(this, 'invoice_id') }}
        union
        select
            {{ surrogate_key('touched.system_key') }} as invoice_id,
            'erp' as system
        from touched
        where touched.system = 'erp'
        union
        select
            links.invoice_id,
            'billing' as system
        from ({{ billing_invoice_links("select system_key from touched where system = 'billing'") }}) as links
    ),

    affected as (
        {{ affected_rows(this, 'invoice_id') }}
    ),
{%- endif %}

erp as (
    select
        {{ surrogate_key('invoices.invoice_no') }} as invoice_id,
        'erp' as system,
        invoices.invoice_no as system_key,
        'master' as match_rule,
        customers.customer_id,
        invoices.customer_no as system_customer_key,
        invoices.amount,
        invoices.currency,
        invoices.status,
        invoices.system_status,
        invoices.issued_at,
        invoices.due_at,
        cast(null as numeric) as amount_paid,
        invoices.order_no as system_order_key,
        cast(null as timestamptz) as created_at,
        invoices.updated_at,
        invoices._extracted_at
    from {{ ref('stg_erp__invoices') }} as invoices
    left join customers on customers.system = 'erp' and invoices.customer_no = customers.system_key
    where
        not invoices._deleted
        {%- if is_incremental() %}
            and invoices.invoice_no in (
                select affected.system_key from affected
                where affected.system = 'erp'
            )
        {%- endif %}
),

links as (
    {%- if is_incremental() %}
        {{ billing_invoice_links("select system_key from affected where system = 'billing'") }}
    {%- else %}
        {{ billing_invoice_links() }}
    {%- endif %}
),

billing as (
    select
        links.invoice_id,
        'billing' as system,
        invoices.billing_invoice_id as system_key,
        case when links.invoice_id is not null then 'explicit_ref' end as match_rule,
        customers.customer_id,
        invoices.billing_customer_id as system_customer_key,
        invoices.amount,
        invoices.currency,
        invoices.status,
        invoices.system_status,
        cast(null as date) as issued_at,
        invoices.due_at,
        invoices.amount_paid,
        cast(null as text) as system_order_key,
        invoices.created_at,
        invoices.updated_at,
        invoices._extracted_at
    from {{ ref('stg_billing__invoices') }} as invoices
    left join links on invoices.billing_invoice_id = links.billing_invoice_id
    left join customers
        on customers.system = 'billing' and invoices.billing_customer_id = customers.system_key
    where
        not invoices._deleted
        {%- if is_incremental() %}
            and invoices.billing_invoice_id in (
                select affected.system_key from affected
                where affected.system = 'billing'
            )
        {%- endif %}
),

unioned as (
    select * from erp
    union all
    select * from billing
),

ranked as (
    select
        *,
        case
            when invoice_id is not null
                then row_number() over (
                    partition by invoice_id, system order by created_at nulls last, length(system_key), system_key
                )
        end as duplicate_rank
    from unioned
)

select
    invoice_id,
    system,
    system_key,
    match_rule,
    case when invoice_id is null then 'unmatched' else 'matched' end as match_status,
    duplicate_rank,
    coalesce(duplicate_rank > 1, false) as is_duplicate,
    customer_id,
    system_customer_key,
    amount,
    currency,
    status,
    system_status,
    issued_at,
    due_at,
    amount_paid,
    system_order_key,
    created_at,
    updated_at,
    _extracted_at,
    now() as _loaded_at
from ranked
