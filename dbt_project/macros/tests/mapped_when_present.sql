-- why: a status or currency code that the seeds do not know must fail loudly, not turn
-- into a silent null in canonical.
{% test mapped_when_present(model, column_name, source_column) %}
    select {{ source_column }}, {{ column_name }}
    from {{ model }}
    where {{ source_column }} is not null and {{ column_name }} is null
{% endtest %}
