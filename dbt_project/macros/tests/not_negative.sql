-- why: amounts, quantities and ages must never be negative once they reach canonical or
-- finance; a negative value means a sign or unit error upstream.
{% test not_negative(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}
