-- why: dbt's persist_docs rewrites every table and column comment on every run (two column
-- listings and two statements per model); a nightly rerun must not pay that for unchanged docs.
{#
    One statement compares the comments the relation already carries with the model's
    descriptions and writes only those that differ (a new table, an edited description). The
    result is what dbt's own macro leaves: every documented relation and column that exists
    carries its description. dbt's materializations call persist_docs, which dispatches here.
#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set statement = tieout_comments_sql(relation, model, for_relation, for_columns) -%}
    {%- if statement | trim -%}
        {%- do run_query(statement) -%}
    {%- endif -%}
{%- endmacro %}


{# A DO block setting the comments that differ; empty when the model documents nothing. #}
{% macro tieout_comments_sql(relation, model, for_relation=true, for_columns=true) -%}
    {%- set relation_doc = model.description if for_relation and config.persist_relation_docs() else '' -%}
    {%- set column_docs = {} -%}
    {%- if for_columns and config.persist_column_docs() -%}
        {%- for name, column in model.columns.items() if column.description -%}
            {%- do column_docs.update({(name if column.quote else name | lower): column.description}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if relation_doc or column_docs %}
    do $tieout_docs$
    declare
        doc record;
    begin
        {%- if relation_doc %}
        if obj_description('{{ relation }}'::regclass, 'pg_class') is distinct from {{ postgres_escape_comment(relation_doc) }} then
            comment on {{ 'view' if relation.is_view else 'table' }} {{ relation }} is {{ postgres_escape_comment(relation_doc) }};
        end if;
        {%- endif %}
        {%- if column_docs %}
        for doc in
            select documented.name, documented.description
            from (
                values
                {%- for name, description in column_docs.items() %}
                    ('{{ name | replace("'", "''") }}', {{ postgres_escape_comment(description) }}){{ ',' if not loop.last }}
                {%- endfor %}
            ) as documented (name, description)
            inner join pg_attribute as live
                on live.attname = documented.name
                and live.attrelid = '{{ relation }}'::regclass
                and live.attnum > 0
                and not live.attisdropped
            where col_description(live.attrelid, live.attnum) is distinct from documented.description
        loop
            execute format('comment on column %s.%I is %L', '{{ relation }}', doc.name, doc.description);
        end loop;
        {%- endif %}
    end
    $tieout_docs$;
    {%- endif -%}
{%- endmacro %}
