-- why: every layer lives in the schema DESIGN.md names (staging, intermediate, canonical,
-- finance), never in a target-prefixed one, so readers' grants from the migrations apply.
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
