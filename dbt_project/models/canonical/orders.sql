-- why: the golden record of every shop order, each field from its source of truth in
-- include/config/entities.yml (the ERP owns status). Incremental: a run recomputes only the
-- orders whose by-system rows it can have changed (entities_to_recompute), writes only those
-- whose canonical content changed, and deletes those that no longer exist.
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
    {{ canonical_select(
        'order', ref('int_orders_by_system'),
        keys=entities_to_recompute('order', ref('int_orders_by_system')) if is_incremental() else none
    ) }}
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
