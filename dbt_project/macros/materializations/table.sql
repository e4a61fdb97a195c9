-- why: dbt's stock table materialization sends 8-10 statements per model (the build, one per
-- index, two renames, two comment queries, hooks, the drop after commit), each a round trip with
-- its own jinja and log events; at nightly-rerun sizes that overhead, not the SQL, was the cost.
{#
    The same result in two statements and a commit: build the table under a temporary name,
    then in one batch index it, drop the old table, move the new one into place, write its
    comments and run the model's post-hooks. A reader never sees a missing or half-built
    table: the swap commits as one transaction, as dbt's own swap does.
#}
{% materialization table, adapter='postgres' %}
    {%- do tieout_refuse_grants() -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {% do tieout_build_and_swap(existing_relation, target_relation, sql) %}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{# The whole table: built under the temporary name (statement 'main'), then swapped into place.
   The table materialization's body, and the incremental one's on a first run or full refresh. #}
{% macro tieout_build_and_swap(existing_relation, target_relation, sql) -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set build_sql = tieout_build_table(intermediate_relation, sql) -%}
    {% call statement('main') -%}
        {{ build_sql }}
    {%- endcall %}
    {%- set swap_sql = tieout_swap_into_place(intermediate_relation, existing_relation, target_relation) -%}
    {% do tieout_write_run_sql([build_sql, swap_sql]) %}
    {% call statement('swap') -%}
        {{ swap_sql }}
    {%- endcall %}
{%- endmacro %}


{# target/run/<model>.sql holds every statement the node sent, written before the last one runs
   so a failure leaves the SQL that failed; dbt itself writes only the statement named 'main'.
   tieout keeps dbt's file log at info (tieout.transform.runner), so this is where a node's SQL
   is read. #}
{% macro tieout_write_run_sql(statements) -%}
    {%- do write(statements | map('trim') | join('\n\n') ~ '\n') -%}
{%- endmacro %}


{# A leftover of an interrupted run under the temporary name is dropped first. The status of
   the batch is the create's (SELECT n), so dbt reports the rows the table holds. #}
{% macro tieout_build_table(relation, sql) -%}
    drop table if exists {{ relation }} cascade;
    {{ get_create_table_as_sql(False, relation, sql) }}
{%- endmacro %}


{# Indexes, the swap, comments and post-hooks (inside the transaction) as one batch. A view of
   the same name (a model that used to be a view) is dropped through dbt so its cache knows. #}
{% macro tieout_swap_into_place(intermediate_relation, existing_relation, target_relation) -%}
    {%- if existing_relation is not none and not existing_relation.is_table -%}
        {%- do adapter.drop_relation(existing_relation) -%}
        {%- set existing_relation = none -%}
    {%- endif -%}
    {%- for index in config.get('indexes', default=[]) %}
        {{ get_create_index_sql(intermediate_relation, index) }};
    {%- endfor %}
    {%- if existing_relation is not none %}
        drop table if exists {{ target_relation }} cascade;
    {%- endif %}
    alter table {{ intermediate_relation }} rename to {{ adapter.quote(target_relation.identifier) }};
    {{ tieout_comments_sql(target_relation, model) }}
    {{ tieout_hooks_sql(post_hooks) }}
{%- endmacro %}


{# The model's hooks that run inside its transaction, rendered into the batch. #}
{% macro tieout_hooks_sql(hooks) -%}
    {%- for hook in hooks | selectattr('transaction', 'equalto', true) -%}
        {%- set rendered = render(hook.get('sql')) | trim -%}
        {%- if rendered %}
            {{ rendered }};
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{# Grants are the migrations' job (schema-wide, for every reader role); a model that asks for
   its own would silently get none here, so it is stopped instead. #}
{% macro tieout_refuse_grants() -%}
    {%- if config.get('grants') -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": grants are not applied by tieout's materializations; readers get"
            ~ " schema-wide grants from the migrations (include/tieout/db/migrations)"
        ) -%}
    {%- endif -%}
{%- endmacro %}
