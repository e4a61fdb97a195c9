-- why: a model's references to other models are one test, not one per column: every test is a
-- dbt node with its own compile and round trip, and a rerun pays that per node.
{#
    references: a list of {column, to, field, where}: each non-null value of `column` (on the
    rows `where` admits) must be a value of `field` in `to`, as dbt's relationships test has
    it. One failing row per reference and value: column_name, failing_value, n_records.
#}
{% test foreign_keys(model, references) %}
    {%- if not references -%}
        {{ exceptions.raise_compiler_error("foreign_keys on " ~ model ~ " names no reference") }}
    {%- endif -%}
    {%- for reference in references %}
        select
            '{{ reference['column'] }}' as column_name,
            cast(child.{{ reference['column'] }} as text) as failing_value,
            count(*) as n_records
        from {{ model }} as child
        where
            child.{{ reference['column'] }} is not null
            {%- if reference.get('where') %}
                and ({{ reference['where'] }})
            {%- endif %}
            and not exists (
                select 1
                from {{ reference['to'] }} as parent
                where parent.{{ reference['field'] }} = child.{{ reference['column'] }}
            )
        group by child.{{ reference['column'] }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
{% endtest %}
