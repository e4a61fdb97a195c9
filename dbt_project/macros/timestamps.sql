-- why: the four systems write time four ways; staging turns each into timestamptz (UTC)
-- here, so no model parses a timestamp by hand.
{% macro from_erp_local(expression) -%}
    (cast(nullif({{ expression }}, '') as timestamp) at time zone 'Europe/Berlin')
{%- endmacro %}

{% macro from_epoch(expression) -%}
    to_timestamp(cast({{ expression }} as double precision))
{%- endmacro %}

{% macro from_iso(expression) -%}
    cast(nullif({{ expression }}, '') as timestamptz)
{%- endmacro %}

{# Calendar dates are the company's books, kept in Europe/Berlin like the ERP's dates. #}
{% macro berlin_date(expression) -%}
    cast(({{ expression }}) at time zone 'Europe/Berlin' as date)
{%- endmacro %}
