-- why: a by-system model after identity resolution may re-key any of its rows, so it computes its
-- whole table every run; rebuilding, re-indexing and swapping that table each night rewrote
-- thousands of rows of which a handful changed.
{#
    The incremental strategy 'diff', through dbt's extension point for custom strategies
    (dbt looks up get_incremental_<strategy>_sql): the model returns its whole table, dbt's
    incremental materialization puts it in a temporary table, and only the difference is
    written to the target:
      - rows whose unique_key is no longer in the model's rows are deleted;
      - rows that differ in any column, compared by value as `is distinct from` does (1.0 and
        1.00 are equal, two nulls are equal), are deleted and inserted again;
      - rows with a new unique_key are inserted.
    Rows equal to the model's are not touched (same ctid and xmin). dbt reports the number of
    rows inserted (new and changed). Needs a unique_key (one column or several);
    incremental_predicates are refused by name: the model's rows are the whole table.

    Use it with: materialized='incremental', incremental_strategy='diff', unique_key=[...].
    The model's SQL must not filter on is_incremental().
#}
{% macro get_incremental_diff_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set new = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if not unique_key -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": incremental_strategy 'diff' needs a unique_key"
        ) -%}
    {%- endif -%}
    {%- if arg_dict['incremental_predicates'] -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": incremental_strategy 'diff' takes no incremental_predicates: the"
            ~ " model returns its whole table and every row of the target is compared with it"
        ) -%}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = [] -%}
    {%- for column in arg_dict['dest_columns'] -%}
        {%- do columns.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {%- set same_key -%}
        {%- for key in keys -%}
            new.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}
        {%- endfor -%}
    {%- endset -%}
    {#- a temporary table has no statistics until analysed; the joins below need only the key's
        (the whole table's took 60 ms of a by-system model's 150) #}
    analyze {{ new }} ({{ keys | join(', ') }});
    delete from {{ target }} as target
    where not exists (select 1 from {{ new }} as new where {{ same_key }});
    delete from {{ target }} as target
    using {{ new }} as new
    where {{ same_key }}
        and row(target.{{ columns | join(', target.') }}) is distinct from row(new.{{ columns | join(', new.') }});
    insert into {{ target }} ({{ columns | join(', ') }})
    select {{ columns | join(', ') }} from {{ new }} as new
    where not exists (select 1 from {{ target }} as target where {{ same_key }})
{%- endmacro %}
