-- why: dbt's stock snapshot materialization sends 13 statements per snapshot (five of them
-- column listings: to validate the target, widen types, find new columns, list the staging
-- table's, check timestamp types), and the nightly rerun runs three snapshots.
{#
    The same SCD2 rows as dbt's check strategy. The first run is one batch (dbt's
    build_snapshot_table, then its indexes, comments and hooks) and a commit. Later runs:
      1. the snapshot table's column names (one query, where dbt's strategy sends two);
      2. the staging table of changes (tieout_snapshot_changes: inserts, updates, hard-delete
         invalidations) and, in the same round trip, its columns;
      3. one batch: add the columns the source gained (as dbt does), write changed comments,
         run the post-hooks, then dbt's merge: close the changed and deleted versions and
         insert the new ones; its status (INSERT 0 n) is what dbt reports.
    Refused by name: a strategy other than check, check_cols other than a list, a check
    strategy's updated_at, hard_deletes='new_record', dbt_valid_to_current. Not done, unlike
    dbt's: widening a varchar column the source widened (tieout's snapshots hold text, numeric
    and timestamps).
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

    {%- if strategy_name != 'check' -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": strategy '" ~ strategy_name ~ "' is not supported by tieout's snapshot"
            ~ " materialization (dbt_project/macros/materializations/snapshot.sql): use strategy 'check'"
        ) -%}
    {%- endif -%}
    {%- if config.get('dbt_valid_to_current') or config.get('updated_at') -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": dbt_valid_to_current and a check strategy's updated_at are not"
            ~ " supported by tieout's snapshot materialization"
        ) -%}
    {%- endif -%}
    {%- if adapter.get_hard_deletes_behavior(config) == 'new_record' -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": hard_deletes='new_record' is not supported by tieout's snapshot"
            ~ " materialization (dbt_project/macros/materializations/snapshot.sql)"
        ) -%}
    {%- endif -%}

    {%- if not exists %}
        {%- set strategy = strategy_dispatch(strategy_name)(
            model, 'snapshotted_data', 'source_data', model['config'], exists
        ) -%}
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
        {%- set target_columns = tieout_column_names(target_relation) -%}
        {%- for column in [columns.dbt_scd_id, columns.dbt_valid_from, columns.dbt_valid_to, columns.dbt_updated_at] -%}
            {%- if column not in target_columns -%}
                {%- do exceptions.raise_compiler_error(
                    target_relation ~ " is not a snapshot table: it has no column " ~ column
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set strategy = tieout_check_strategy(target_columns) -%}
        {%- set staging_relation = make_temp_relation(target_relation) -%}
        {%- set staging_sql -%}
            {{ create_table_as(True, staging_relation, tieout_snapshot_changes(strategy, sql, target_relation)) }}
            {{ tieout_columns_sql(staging_relation) }}
            order by position
        {%- endset -%}
        {% do tieout_write_run_sql([staging_sql]) %}
        {% call statement('staging', fetch_result=True) -%}
            {{ staging_sql }}
        {%- endcall %}
        {%- set described = load_result('staging')['table'] -%}
        {%- set new_columns = [] -%}
        {%- set insert_columns = [] -%}
        {%- for row in described -%}
            {%- if row['name'] != 'dbt_change_type' and not row['name'].startswith('dbt_unique_key') -%}
                {%- do insert_columns.append(adapter.quote(row['name'])) -%}
                {%- if row['name'] not in target_columns -%}
                    {%- do new_columns.append(row) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set merge_sql -%}
            {%- for row in new_columns %}
                alter table {{ target_relation }} add column {{ adapter.quote(row['name']) }} {{ row['type'] }};
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


{# A relation's column names, in order (tieout_columns_sql, in one query). #}
{% macro tieout_column_names(relation) -%}
    {%- set found = run_query(tieout_columns_sql(relation) ~ ' order by position') -%}
    {{ return(found.columns['name'].values() | list) }}
{%- endmacro %}


{#
    The check strategy, as dbt's snapshot_check_strategy has it, for a snapshot table that
    exists, without the two column queries dbt's sends: its columns are given. A row changed
    when a checked column is distinct from the current version's; when the snapshot table lacks
    a checked column (it was added to check_cols), every row changed, as in dbt. updated_at is
    the snapshot's time.
#}
{% macro tieout_check_strategy(target_columns) -%}
    {%- set check_cols = config.get('check_cols') -%}
    {%- if check_cols is string or not check_cols -%}
        {%- do exceptions.raise_compiler_error(
            model.unique_id ~ ": tieout's snapshot materialization needs check_cols as a list of"
            ~ " columns, not " ~ (check_cols or 'nothing')
        ) -%}
    {%- endif -%}
    {%- set changed = [] -%}
    {%- for column in check_cols -%}
        {%- do changed.append('snapshotted_data.' ~ column ~ ' is distinct from source_data.' ~ column) -%}
    {%- endfor -%}
    {%- set added = check_cols | reject('in', target_columns) | list -%}
    {{ return({
        'unique_key': config.get('unique_key'),
        'updated_at': snapshot_get_time(),
        'row_changed': 'true' if added else '(' ~ (changed | join(' or ')) ~ ')',
        'hard_deletes': adapter.get_hard_deletes_behavior(config),
    }) }}
{%- endmacro %}


{#
    The staging rows of a snapshot run, as dbt's snapshot_staging_table has them (the source's
    columns, dbt_unique_key, the snapshot's meta columns and dbt_change_type):
      insert  a new version: of a key the snapshot lacks, or of a row that changed;
      update  the current version of a changed row, which the merge closes;
      delete  with hard_deletes='invalidate', the current version of a key the source lost.
    dbt_scd_id is dbt's hash of the key and the snapshot time. The source and the current
    versions are read where they are used, not as CTEs shared three times: those are
    materialised without statistics, and dbt's joins of them became sorts and merge joins of
    the whole table (40 ms for 10,000 invoices, 11 ms this way).
#}
{% macro tieout_snapshot_changes(strategy, source_sql, target_relation) -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set keys = [strategy.unique_key] if strategy.unique_key is string else strategy.unique_key -%}
    {%- set scd_arguments = [] -%}
    {%- for key in keys -%}
        {%- do scd_arguments.append('source_data.' ~ key) -%}
    {%- endfor -%}
    {%- do scd_arguments.append(strategy.updated_at) -%}
    {%- set joined_on = unique_key_join_on(strategy.unique_key, 'snapshotted_data', 'source_data') -%}
    {%- set now = strategy.updated_at -%}
    with source_data as not materialized (
        select snapshot_query.*, {{ unique_key_fields(strategy.unique_key) }}
        from ({{ source_sql }}) as snapshot_query
    ),

    snapshotted_data as not materialized (
        select current_versions.*, {{ unique_key_fields(strategy.unique_key) }}
        from {{ target_relation }} as current_versions
        where current_versions.{{ columns.dbt_valid_to }} is null
    )

    select
        'insert' as dbt_change_type,
        source_data.*,
        {{ now }} as {{ columns.dbt_updated_at }},
        {{ now }} as {{ columns.dbt_valid_from }},
        nullif({{ now }}, {{ now }}) as {{ columns.dbt_valid_to }},
        {{ snapshot_hash_arguments(scd_arguments) }} as {{ columns.dbt_scd_id }}
    from source_data
    left join snapshotted_data on {{ joined_on }}
    where {{ unique_key_is_null(strategy.unique_key, 'snapshotted_data') }} or {{ strategy.row_changed }}

    union all

    select
        'update' as dbt_change_type,
        source_data.*,
        {{ now }} as {{ columns.dbt_updated_at }},
        {{ now }} as {{ columns.dbt_valid_from }},
        {{ now }} as {{ columns.dbt_valid_to }},
        snapshotted_data.{{ columns.dbt_scd_id }}
    from source_data
    inner join snapshotted_data on {{ joined_on }}
    where {{ strategy.row_changed }}
    {%- if strategy.hard_deletes == 'invalidate' %}

    union all

    select
        'delete' as dbt_change_type,
        source_data.*,
        {{ now }} as {{ columns.dbt_updated_at }},
        {{ now }} as {{ columns.dbt_valid_from }},
        {{ now }} as {{ columns.dbt_valid_to }},
        snapshotted_data.{{ columns.dbt_scd_id }}
    from snapshotted_data
    left join source_data on {{ joined_on }}
    where {{ unique_key_is_null(strategy.unique_key, 'source_data') }}
    {%- endif %}
{%- endmacro %}
