-- why: row-level invariants (a link has a rule, a duplicate is never rank 1) read best as
-- one boolean expression; rows where it is false are the failures.
{% test expression_is_true(model, expression, where_clause=none) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
    {% if where_clause %}and ({{ where_clause }}){% endif %}
{% endtest %}
