-- why: dbt's stock incremental materialization sends about eight statements per model (the
-- temp table, two column listings to widen types, a third to list the target's columns, the
-- merge, two comment queries, hooks); a nightly rerun of ~30 models paid more for those round
-- trips and their jinja than for the SQL that does the work.
{#
    The same result in one batch and a commit: the model's rows (only what changed, under
    is_incremental()) into a temporary table dropped at commit; a check that they have the
    target's columns (same names, order and types); the delete of the target's rows with the
    same unique_key and the insert of the new rows; changed comments; the post-hooks. The
    batch's status, SELECT n of the model's rows, is what dbt reports as the rows the run
    touched, and the batch is what target/run/ holds for the model.
    Strategies: delete+insert, append (never deletes), dbt's default (delete+insert with a
    unique_key, append without), and diff: the model returns its whole table and only the
    difference is written (vanished keys deleted, changed rows replaced, new ones inserted), so
    a table whose every row may change (a by-system model after identity resolution) is
    compared in a temporary table instead of rebuilt, indexed and swapped.
    incremental_predicates are refused by name.
    The column check is on_schema_change='fail', whatever the model says ('ignore', dbt's
    default, included): a model whose columns changed stops with a message to rebuild it with
    --full-refresh, instead of silently leaving new columns out. A first run, a full refresh or
    a view of the same name builds the whole table the way the table materialization does.
#}
{% materialization incremental, adapter='postgres' -%}
    {%- do tieout_refuse_grants() -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set strategy = config.get('incremental_strategy') or 'default' -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- if strategy not in ['default', 'delete+insert', 'append', 'diff'] -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": incremental_strategy '" ~ strategy ~ "' is not supported by tieout's"
            ~ " incremental materialization (dbt_project/macros/materializations/incremental.sql):"
            ~ " use delete+insert, append or diff"
        ) -%}
    {%- endif -%}
    {%- if strategy in ['delete+insert', 'diff'] and not unique_key -%}
        {%- do exceptions.raise_compiler_error(model.unique_id ~ ": " ~ strategy ~ " needs a unique_key") -%}
    {%- endif -%}
    {%- if config.get('incremental_predicates') or config.get('predicates') -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": incremental_predicates are not supported by tieout's incremental"
            ~ " materialization; filter in the model's is_incremental() block instead"
        ) -%}
    {%- endif -%}
    {#- 'ignore' is dbt's default for every model: tieout checks the columns under it too -#}
    {%- if config.get('on_schema_change') not in [none, 'ignore', 'fail'] -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": on_schema_change '" ~ config.get('on_schema_change') ~ "' is not"
            ~ " supported by tieout's incremental materialization; it always fails on a schema change"
        ) -%}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is none or existing_relation.is_view or should_full_refresh() %}
        {% do tieout_build_and_swap(existing_relation, target_relation, sql) %}
    {%- else %}
        {%- set temp_relation = make_temp_relation(target_relation) -%}
        {% call statement('main') -%}
            create temporary table {{ temp_relation }} on commit drop as (
                {{ sql }}
            );
            {{ tieout_assert_same_columns(temp_relation, target_relation) }}
            {%- if strategy == 'diff' %}
                {{ tieout_write_difference(target_relation, temp_relation, unique_key) }}
            {%- else %}
                {%- if unique_key and strategy != 'append' %}
                    {{ tieout_delete_matching(target_relation, temp_relation, unique_key) }}
                {%- endif %}
                insert into {{ target_relation }} select * from {{ temp_relation }};
            {%- endif %}
            {{ tieout_comments_sql(target_relation, model) }}
            {{ tieout_hooks_sql(post_hooks) }}
            {{ tieout_report_rows(temp_relation) }}
        {%- endcall %}
    {%- endif %}

    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}


{# Stop unless the new rows have exactly the target's columns, in order, with the same types,
   naming the first column that differs. #}
{% macro tieout_assert_same_columns(new_relation, target_relation) -%}
    do $tieout_columns$
    declare
        difference text;
    begin
        select coalesce(target.name, '(none)') || ' ' || coalesce(target.type, '') || ' in the table, '
            || coalesce(new.name, '(none)') || ' ' || coalesce(new.type, '') || ' in the model'
        into difference
        from ({{ tieout_columns_sql(target_relation) }}) as target
        full join ({{ tieout_columns_sql(new_relation) }}) as new on target.position = new.position
        where target.name is distinct from new.name or target.type is distinct from new.type
        order by coalesce(target.position, new.position)
        limit 1;
        if difference is not null then
            raise exception 'the columns of {{ model.name }} changed (%); rebuild it with: tieout transform --full-refresh --select {{ model.name }}', difference;
        end if;
    end
    $tieout_columns$;
{%- endmacro %}


{# A relation's live columns in order: position, name, type. #}
{% macro tieout_columns_sql(relation) -%}
    select
        row_number() over (order by attnum) as position,
        attname::text as name,
        format_type(atttypid, atttypmod) as type
    from pg_attribute
    where attrelid = '{{ relation }}'::regclass and attnum > 0 and not attisdropped
{%- endmacro %}


{# `new` and `target` hold the same unique_key (one column or several). #}
{% macro tieout_same_key(unique_key) -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- for key in keys -%}
        new.{{ key }} = target.{{ key }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{# delete+insert's delete: the target's rows whose unique_key is among the new rows'. #}
{% macro tieout_delete_matching(target_relation, new_relation, unique_key) -%}
    delete from {{ target_relation }} as target
    using {{ new_relation }} as new
    where {{ tieout_same_key(unique_key) }};
{%- endmacro %}


{# The diff strategy's write: the new rows are the whole table, and only the difference is
   written. Rows whose key is gone are deleted, rows that differ in any column (compared by
   value, as `is distinct from` does: 1.0 and 1.00 are equal) are replaced, new keys are
   inserted. #}
{% macro tieout_write_difference(target_relation, new_relation, unique_key) -%}
    {%- set same_key = tieout_same_key(unique_key) %}
    {#- a temporary table has no statistics until analysed; the joins below need only the key's
        (the whole table's took 60 ms of a by-system model's 150) #}
    analyze {{ new_relation }} ({{ ([unique_key] if unique_key is string else unique_key) | join(', ') }});
    delete from {{ target_relation }} as target
    where not exists (select 1 from {{ new_relation }} as new where {{ same_key }});
    delete from {{ target_relation }} as target
    using {{ new_relation }} as new
    where {{ same_key }} and row(target.*) is distinct from row(new.*);
    insert into {{ target_relation }}
    select new.* from {{ new_relation }} as new
    where not exists (select 1 from {{ target_relation }} as target where {{ same_key }});
{%- endmacro %}
