-- why: every amount leaves staging as numeric in the currency's major unit; billing's
-- integer minor units are scaled by the currencies seed, never by a hard-coded 100.
{% macro minor_to_major(amount, minor_unit) -%}
    round(cast({{ amount }} as numeric) / power(10::numeric, coalesce({{ minor_unit }}, 2)), coalesce({{ minor_unit }}, 2))
{%- endmacro %}

{% macro decimal_string(expression) -%}
    cast(nullif(btrim({{ expression }}), '') as numeric)
{%- endmacro %}
