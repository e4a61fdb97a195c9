-- why: the golden record of every product in the ERP catalogue, each field from its source
-- of truth in include/config/entities.yml; shop prices are compared with it, never used.

with

canonical as (
    {{ canonical_select('product', ref('int_products_by_system')) }}
)

select
    *,
    {{ canonical_row_hash('product') }} as _row_hash
from canonical
