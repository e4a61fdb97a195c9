-- why: the golden record of every customer the ERP defines, each field from its source of
-- truth in include/config/entities.yml; it never invents a customer and never merges two.

with

canonical as (
    {{ canonical_select('customer', ref('int_customers_by_system')) }}
)

select
    *,
    {{ canonical_row_hash('customer') }} as _row_hash
from canonical
