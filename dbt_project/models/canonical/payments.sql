-- why: every payment billing knows, with the canonical invoice it settles; billing is the
-- only system that sees payments, so this is the whole truth about money received.
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_vanished('payment', ref('int_payments_by_system')) }}",
    )
}}

with

canonical as (
    {{ canonical_select('payment', ref('int_payments_by_system')) }}
),

final as (
    select
        canonical.*,
        payments.created_at as paid_at,
        {{ canonical_row_hash('payment', 'canonical', ['payments.created_at']) }} as _row_hash,
        now() as _loaded_at
    from canonical
    inner join {{ ref('int_payments_by_system') }} as payments
        on canonical.payment_id = payments.payment_id
)

select final.*
from final
{{ only_changed_rows('final', 'payment_id') }}
