-- why: the golden record of every ERP invoice, each field from its source of truth in
-- include/config/entities.yml (billing owns status). Incremental: a run recomputes only the
-- invoices whose by-system rows or ERP order it can have changed, writes only those whose
-- canonical content changed, and deletes those that no longer exist.
{{
    config(
        materialized='incremental',
        unique_key='invoice_id',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_vanished('invoice', ref('int_invoices_by_system')) }}",
    )
}}

with

{%- if is_incremental() %}

    -- the invoices whose rows can have changed, and those whose ERP order was relinked or is gone
    to_recompute as (
        {{ entities_to_recompute('invoice', ref('int_invoices_by_system')) }}
        union
        select links.invoice_id
        from ({{ erp_invoice_orders() }}) as links
        where links._loaded_at > {{ last_written(this) }}
        union
        select current_rows.invoice_id
        from {{ this }} as current_rows
        where
            current_rows.order_id is not null
            and not exists (
                select 1
                from ({{ erp_invoice_orders() }}) as links
                where links.invoice_id = current_rows.invoice_id and links.order_id = current_rows.order_id
            )
    ),
{%- endif %}

canonical as (
    {{ canonical_select(
        'invoice', ref('int_invoices_by_system'),
        keys='select invoice_id from to_recompute' if is_incremental() else none
    ) }}
),

erp_orders as (
    select
        links.invoice_no,
        links.order_id
    from ({{ erp_invoice_orders() }}) as links
    where links.order_id is not null
),

final as (
    select
        canonical.*,
        erp_orders.order_id,
        {{ canonical_row_hash('invoice', 'canonical', ['erp_orders.order_id']) }} as _row_hash,
        now() as _loaded_at
    from canonical
    left join erp_orders on canonical.erp_id = erp_orders.invoice_no
)

select final.*
from final
{{ only_changed_rows('final', 'invoice_id') }}
