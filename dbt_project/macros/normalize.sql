-- why: identity matching compares normalised forms; the values reconcile sees stay as each
-- system holds them, so these macros are used for matching only.
{% macro normalize_email(expression) -%}
    nullif(lower(btrim({{ expression }})), '')
{%- endmacro %}

{% macro normalize_vat(expression) -%}
    nullif(upper(regexp_replace({{ expression }}, '[^A-Za-z0-9]', '', 'g')), '')
{%- endmacro %}

{# digits only, and at most the last 9 of them, so '+49 30 1234567' and '030 1234567' meet #}
{% macro normalize_phone(expression) -%}
    nullif(right(regexp_replace({{ expression }}, '[^0-9]', '', 'g'), 9), '')
{%- endmacro %}

{% macro normalize_name(expression) -%}
    nullif(lower(regexp_replace(btrim({{ expression }}), '\s+', ' ', 'g')), '')
{%- endmacro %}

{% macro clean_text(expression) -%}
    nullif(btrim({{ expression }}), '')
{%- endmacro %}
