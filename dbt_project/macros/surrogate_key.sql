-- why: canonical keys must stay the same across runs and rebuilds, so they are an md5 of
-- the master system's key and nothing else (never a sequence, never a row number).
{% macro surrogate_key(master_key) -%}
    md5(cast({{ master_key }} as text))
{%- endmacro %}
