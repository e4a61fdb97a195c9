-- why: the golden record of every shop order, each field from its source of truth in
-- include/config/entities.yml (the ERP owns status). Incremental: a run writes only orders
-- whose canonical content changed (and deletes those that no longer exist), and never rewrites
-- history.
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_vanished('order', ref('int_orders_by_system')) }}",
    )
}}

with

canonical as (
    {{ canonical_select('order', ref('int_orders_by_system')) }}
),

final as (
    select
        *,
        {{ canonical_row_hash('order') }} as _row_hash,
        now() as _loaded_at
    from canonical
)

select final.*
from final
{{ only_changed_rows('final', 'order_id') }}
