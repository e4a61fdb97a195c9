-- why: every test is a dbt node with its own compile and round trip, and the nightly rerun pays
-- that per node; one query per model checks all of its own columns, as strictly as dbt's tests.
{#
    One failing row per failing check and value: check_name, the column(s), the offending value
    and how many rows hold it, so a failure says what dbt's per-column test would have said.
    Semantics are dbt's built-ins (and this project's own tests) exactly:
      not_null: [col]                   col is null
      unique: [col | [col, col]]        a non-null value (or a combination, nulls included as in
                                        unique_combination_of_columns) held by more than one row
      accepted_values: {col: [values]}  a non-null value outside the list
      not_negative: [col]               col < 0
      mapped_when_present: {col: src}   src holds a code but col (its seed mapping) is null
      expressions: [{expression, where}] rows (matching where) on which expression is not true
    Checks across models (relationships, row counts) stay tests of their own.
#}
{% test row_checks(
    model,
    not_null=[],
    unique=[],
    accepted_values={},
    not_negative=[],
    mapped_when_present={},
    expressions=[]
) %}
    {%- set branches = [] -%}
    {%- for column in not_null -%}
        {%- do branches.append(row_check_sql(model, 'not_null', column, 'null', column ~ ' is null', none)) -%}
    {%- endfor -%}
    {%- for key in unique -%}
        {%- if key is string -%}
            {%- do branches.append(row_check_sql(model, 'unique', key, key, key ~ ' is not null', key, 'count(*) > 1')) -%}
        {%- else -%}
            {%- set columns = key | join(', ') -%}
            {%- do branches.append(row_check_sql(
                model, 'unique', columns, "concat_ws('|', " ~ columns ~ ")", 'true', columns, 'count(*) > 1'
            )) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for column, values in accepted_values.items() -%}
        {%- set listed = "('" ~ values | join("', '") ~ "')" -%}
        {%- do branches.append(row_check_sql(
            model, 'accepted_values', column, column, 'cast(' ~ column ~ ' as text) not in ' ~ listed, column
        )) -%}
    {%- endfor -%}
    {%- for column in not_negative -%}
        {%- do branches.append(row_check_sql(model, 'not_negative', column, column, column ~ ' < 0', column)) -%}
    {%- endfor -%}
    {%- for column, source_column in mapped_when_present.items() -%}
        {%- do branches.append(row_check_sql(
            model, 'mapped_when_present', column, source_column,
            source_column ~ ' is not null and ' ~ column ~ ' is null', source_column
        )) -%}
    {%- endfor -%}
    {%- for check in expressions -%}
        {%- set condition = 'not coalesce((' ~ check['expression'] ~ '), false)' -%}
        {%- if check.get('where') -%}
            {%- set condition = condition ~ ' and (' ~ check['where'] ~ ')' -%}
        {%- endif -%}
        {%- do branches.append(row_check_sql(model, 'expression_is_true', check['expression'], 'null', condition, none)) -%}
    {%- endfor -%}
    {%- if not branches -%}
        {{ exceptions.raise_compiler_error("row_checks on " ~ model ~ " names no check") }}
    {%- endif -%}
    {{ branches | join('\n    union all\n') }}
{% endtest %}

{# One branch: rows of model failing condition, grouped by the failing value (group_by none: one
   row with the count, only when there are failures). #}
{% macro row_check_sql(model, check_name, column_name, value, condition, group_by, having='count(*) > 0') -%}
    select
        '{{ check_name }}' as check_name,
        '{{ column_name | replace("'", "''") }}' as column_name,
        cast({{ value }} as text) as failing_value,
        count(*) as n_records
    from {{ model }}
    where {{ condition }}
    {% if group_by %}group by {{ group_by }}{% endif %}
    having {{ having }}
{%- endmacro %}
