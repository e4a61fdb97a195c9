-- why: dbt's stock table materialization sends 8-10 statements per model (the build, one per
-- index, two renames, two comment queries, hooks, the drop after commit), each a round trip with
-- its own jinja and log events; at nightly-rerun sizes that overhead, not the SQL, was the cost.
{#
    The same result in one batch and a commit: build the table under a temporary name, index
    it, drop the old table, move the new one into place, write its comments and run the model's
    post-hooks; the batch is also what target/run/ holds for the model. A reader never sees a missing or half-built
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


{# The whole table, in one batch: built under the temporary name, then swapped into place. The
   table materialization's body, and the incremental one's on a first run or full refresh. #}
{% macro tieout_build_and_swap(existing_relation, target_relation, sql) -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {% call statement('main') -%}
        {{ tieout_build_table(intermediate_relation, sql) }}
        {{ tieout_swap_into_place(intermediate_relation, existing_relation, target_relation) }}
        {{ tieout_report_rows(target_relation) }}
    {%- endcall %}
{%- endmacro %}


{# The last statement of a node's batch. dbt reports the status of a batch's last statement;
   this one's is SELECT n, the rows the model's query returned (rows without columns: nothing
   but the count crosses the wire). #}
{% macro tieout_report_rows(relation) -%}
    select from {{ relation }};
{%- endmacro %}


{# A leftover of an interrupted run under the temporary name is dropped first. #}
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
            ~ " schema-wide grants from include/tieout/db/grants.sql"
        ) -%}
    {%- endif -%}
{%- endmacro %}
