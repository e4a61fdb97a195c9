-- why: the grain of most tieout tables is a pair (system, key) or (order, line); dbt ships
-- no multi-column unique test and packages cannot be installed here.
{% test unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
