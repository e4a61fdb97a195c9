-- why: dbt's stock snapshot materialization sends 13 statements per snapshot (five of them
-- column listings: to validate the target, widen types, find new columns, list the staging
-- table's, check timestamp types), and the nightly rerun runs three snapshots.
{#
    The same SCD2 rows, from dbt's own SQL (the strategy, snapshot_staging_table,
    build_snapshot_table, snapshot_merge_sql). The first run is one batch (the table, its
    indexes, comments and hooks) and a commit; later runs two statements and a commit:
      1. the staging table of changes (inserts, updates, hard-delete invalidations) and, in the
         same round trip, the columns of it and of the snapshot table;
      2. one batch: add the columns the source gained (as dbt does), write changed comments, run
         the post-hooks, then dbt's merge: close the changed and deleted versions and insert
         the new ones; its status (INSERT 0 n) is what dbt reports.
    Not done here, unlike dbt's: widening a varchar column the source widened (tieout's
    snapshots hold text, numeric and timestamps), and hard_deletes='new_record', which is
    refused by name.
#}
{% materialization snapshot, adapter='postgres' %}
    {%- do tieout_refuse_grants() -%}
    {%- set strategy_name = config.get('strategy') -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set exists, target_relation = get_or_create_relation(
        database=model.database,
        schema=model.schema,
        identifier=model.get('alias', model.get('name')),
        type='table'
    ) -%}
    {%- if not target_relation.is_table -%}
        {%- do exceptions.relation_wrong_type(target_relation, 'table') -%}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set strategy = strategy_dispatch(strategy_name)(
        model, 'snapshotted_data', 'source_data', model['config'], exists
    ) -%}
    {%- if strategy.hard_deletes == 'new_record' -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": hard_deletes='new_record' is not supported by tieout's snapshot"
            ~ " materialization (dbt_project/macros/materializations/snapshot.sql)"
        ) -%}
    {%- endif -%}

    {%- if not exists %}
        {% call statement('main') -%}
            {{ create_table_as(False, target_relation, build_snapshot_table(strategy, model['compiled_code'])) }}
            {%- for index in config.get('indexes', default=[]) %}
                {{ get_create_index_sql(target_relation, index) }};
            {%- endfor %}
            {{ tieout_comments_sql(target_relation, model) }}
            {{ tieout_hooks_sql(post_hooks) }}
            {{ tieout_report_rows(target_relation) }}
        {%- endcall %}
    {%- else %}
        {%- set staging_relation = make_temp_relation(target_relation) -%}
        {%- set staging_sql -%}
            {{ create_table_as(True, staging_relation, snapshot_staging_table(strategy, sql, target_relation)) }}
            select
                attrelid = '{{ staging_relation }}'::regclass as in_staging,
                attname::text as name,
                format_type(atttypid, atttypmod) as data_type
            from pg_attribute
            where
                attrelid in ('{{ staging_relation }}'::regclass, '{{ target_relation }}'::regclass)
                and attnum > 0
                and not attisdropped
            order by attrelid = '{{ staging_relation }}'::regclass, attnum
        {%- endset -%}
        {% do tieout_write_run_sql([staging_sql]) %}
        {% call statement('staging', fetch_result=True) -%}
            {{ staging_sql }}
        {%- endcall %}
        {%- set described = load_result('staging')['table'] -%}
        {%- set target_columns = [] -%}
        {%- set new_columns = [] -%}
        {%- for row in described if not row['in_staging'] -%}
            {%- do target_columns.append(row['name']) -%}
        {%- endfor -%}
        {%- for column in [columns.dbt_scd_id, columns.dbt_valid_from, columns.dbt_valid_to, columns.dbt_updated_at] -%}
            {%- if column not in target_columns -%}
                {%- do exceptions.raise_compiler_error(
                    target_relation ~ " is not a snapshot table: it has no column " ~ column
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set insert_columns = [] -%}
        {%- for row in described if row['in_staging'] -%}
            {%- if row['name'] != 'dbt_change_type' and not row['name'].startswith('dbt_unique_key') -%}
                {%- do insert_columns.append(adapter.quote(row['name'])) -%}
                {%- if row['name'] not in target_columns -%}
                    {%- do new_columns.append(row) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set merge_sql -%}
            {%- for row in new_columns %}
                alter table {{ target_relation }} add column {{ adapter.quote(row['name']) }} {{ row['data_type'] }};
            {%- endfor %}
            {{ tieout_comments_sql(target_relation, model) }}
            {{ tieout_hooks_sql(post_hooks) }}
            {{ snapshot_merge_sql(target=target_relation, source=staging_relation, insert_cols=insert_columns) }}
        {%- endset -%}
        {#- statement('main') writes the merge alone to target/run/ before it runs; once it ran,
            the staging statement is put back in front of it #}
        {% call statement('main') -%}
            {{ merge_sql }}
        {%- endcall %}
        {% do tieout_write_run_sql([staging_sql, merge_sql]) %}
    {%- endif %}

    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{# target/run/<model>.sql holds every statement a node sent; dbt writes only the statement named
   'main' there, and a snapshot sends its staging statement first. tieout keeps dbt's file log at
   info (tieout.transform.runner), so this is where a node's SQL is read. #}
{% macro tieout_write_run_sql(statements) -%}
    {%- do write(statements | map('trim') | join('\n\n') ~ '\n') -%}
{%- endmacro %}
