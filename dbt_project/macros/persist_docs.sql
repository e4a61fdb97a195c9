-- why: dbt's persist_docs rewrites every table and column comment on every run (two column
-- listings and two statements per model); a nightly rerun must not pay that for unchanged docs.
{#
    One query reads the comments the relation already carries; only a description that differs
    (a new table, an edited description) is written. The result is what dbt's own macro leaves:
    every documented relation and column carries its description.
#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set persist_relation = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set persist_columns = for_columns and config.persist_column_docs() and model.columns -%}
    {%- if persist_relation or persist_columns -%}
        {%- set current = {} -%}
        {%- for row in run_query(comments_sql(relation)) -%}
            {%- do current.update({row[0]: row[1] or ''}) -%}
        {%- endfor -%}
        {%- set statements = [] -%}
        {%- if persist_relation and current.get('') != model.description -%}
            {%- do statements.append(alter_relation_comment(relation, model.description)) -%}
        {%- endif -%}
        {%- if persist_columns -%}
            {%- set columns = [] -%}
            {%- for name in current if name -%}{%- do columns.append(name) -%}{%- endfor -%}
            {%- set documented = dbt.validate_doc_columns(relation, model.columns, columns) -%}
            {%- for name, column in documented.items() -%}
                {%- set key = name if column['quote'] else name | lower -%}
                {%- if current.get(key, '') != (column['description'] or '') -%}
                    {%- do statements.append(
                        'comment on column ' ~ relation ~ '.' ~ (adapter.quote(name) if column['quote'] else name)
                        ~ ' is ' ~ postgres_escape_comment(column['description'])
                    ) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
        {%- if statements -%}
            {%- do run_query(statements | join(';\n')) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# The relation's own comment (name '') and each live column's comment. #}
{% macro comments_sql(relation) -%}
    select '' as name, obj_description('{{ relation }}'::regclass, 'pg_class') as comment
    union all
    select attname::text, col_description(attrelid, attnum)
    from pg_attribute
    where attrelid = '{{ relation }}'::regclass and attnum > 0 and not attisdropped
{%- endmacro %}
