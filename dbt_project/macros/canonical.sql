-- why: canonical tables take every field from the system include/config/entities.yml names
-- as its source of truth; this macro writes that SQL from the config, so no model hand-copies it.

{#
    One row per real-world entity from an int_<entity>_by_system model: the master system's
    first-ranked record defines the row, each field comes from its source-of-truth system's
    first-ranked record, and falls back to the master's value only when the source of truth
    holds no record at all (field_sources says which system each value came from).
    keys, a query of entity keys, limits it to those entities.
#}
{% macro canonical_select(entity, by_system, keys=none) -%}
    {%- set spec = tieout_entities()[entity] -%}
    {%- set key = entity_name(spec['key']) -%}
    {%- set master = entity_name(spec['master']) -%}
    select
        {{ master }}.{{ key }},
        {%- for field, f in spec['fields'].items() %}
            {{ source_of_truth_value(spec['master'], f['source_of_truth'], field) }} as {{ entity_name(field) }},
        {%- endfor %}
        {%- for system in spec['systems'] %}
            {{ entity_name(system) }}.system_key as {{ entity_name(system ~ '_id') }},
        {%- endfor %}
        jsonb_build_object(
            {%- for field, f in spec['fields'].items() %}
                {{ entity_literal(field) }}, {{ source_of_truth_system(spec['master'], f['source_of_truth']) }}
                {{- ',' if not loop.last }}
            {%- endfor %}
        ) as field_sources,
        greatest(
            {%- for system in spec['systems'] %}
                {{ entity_name(system) }}._extracted_at{{ ',' if not loop.last }}
            {%- endfor %}
        ) as _source_extracted_at
    from {{ by_system }} as {{ master }}
    {%- for system in spec['systems'] if system != spec['master'] %}
        left join {{ by_system }} as {{ entity_name(system) }}
            on
                {{ master }}.{{ key }} = {{ entity_name(system) }}.{{ key }}
                and {{ entity_name(system) }}.system = {{ entity_literal(system) }}
                and {{ entity_name(system) }}.duplicate_rank = 1
    {%- endfor %}
    where
        {{ master }}.system = {{ entity_literal(spec['master']) }}
        and {{ master }}.duplicate_rank = 1
        and {{ master }}.{{ key }} is not null
        {%- if keys %}
            {#- an array, computed first: the planner then starts from these rows instead of
                joining the whole table and filtering last #}
            and {{ master }}.{{ key }} = any(array({{ keys }}))
        {%- endif %}
{%- endmacro %}


{#
    The entities an incremental canonical table recomputes (the keys of `entity`): every entity a
    by-system row written since the table last wrote belongs to, and every entity whose recorded
    first-ranked copy in another system is gone or no longer its own (a copy deleted, relinked or
    out-ranked: the row that replaces it was written, the one that left may not have been).
    Entities whose master is gone are the delete_vanished post-hook's.
#}
{% macro entities_to_recompute(entity, by_system) -%}
    {%- set spec = tieout_entities()[entity] -%}
    {%- set key = entity_name(spec['key']) -%}
    select written.{{ key }}
    from {{ by_system }} as written
    where
        written.{{ key }} is not null
        and written._loaded_at > {{ last_written(this) }}
    {%- for system in spec['systems'] if system != spec['master'] %}
        union
        select current_rows.{{ key }}
        from {{ this }} as current_rows
        where
            current_rows.{{ entity_name(system ~ '_id') }} is not null
            and not exists (
                select 1
                from {{ by_system }} as copy
                where
                    copy.system = {{ entity_literal(system) }}
                    and copy.system_key = current_rows.{{ entity_name(system ~ '_id') }}
                    and copy.{{ key }} = current_rows.{{ key }}
                    and copy.duplicate_rank = 1
            )
    {%- endfor %}
{%- endmacro %}

{# When a table that writes only changed rows last wrote one: rows of its sources written later
   are changes it has not taken in. #}
{% macro last_written(relation) -%}
    (
        select coalesce(max(written_rows._loaded_at), '-infinity'::timestamptz)
        from {{ relation }} as written_rows
    )
{%- endmacro %}

{% macro source_of_truth_value(master, source_of_truth, field) -%}
    {%- set column = entity_name(field) -%}
    {%- if source_of_truth == master -%}
        {{ entity_name(master) }}.{{ column }}
    {%- else -%}
        case
            when {{ entity_name(source_of_truth) }}.system_key is not null
                then {{ entity_name(source_of_truth) }}.{{ column }}
            else {{ entity_name(master) }}.{{ column }}
        end
    {%- endif -%}
{%- endmacro %}

{% macro source_of_truth_system(master, source_of_truth) -%}
    {%- if source_of_truth == master -%}
        {{ entity_literal(master) }}
    {%- else -%}
        case
            when {{ entity_name(source_of_truth) }}.system_key is not null
                then {{ entity_literal(source_of_truth) }}
            else {{ entity_literal(master) }}
        end
    {%- endif -%}
{%- endmacro %}

{#
    A name from include/config/entities.yml (entity key, field, system) as SQL: checked again
    to be a plain lowercase name (config check refuses anything else), then quoted, so no name
    can ever be read as SQL.
#}
{% macro entity_name(name) -%}
    {#- `is defined`: sqlfluff renders these macros without dbt's context #}
    {%- if modules is defined and not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', name) -%}
        {%- do exceptions.raise_compiler_error(
            "include/config/entities.yml: " ~ (name | tojson) ~ " is not a lowercase SQL name "
            ~ "(run `tieout config check`)"
        ) -%}
    {%- endif -%}
    {{- adapter.quote(name) if adapter is defined else '"' ~ name ~ '"' -}}
{%- endmacro %}

{# The same name as a SQL string literal (a system or field name compared or stored as text). #}
{% macro entity_literal(name) -%}
    {%- do entity_name(name) -%}
    '{{ name }}'
{%- endmacro %}

{# The columns the canonical table holds for an entity: key, config fields, one id per system. #}
{% macro canonical_columns(entity) -%}
    {%- set spec = tieout_entities()[entity] -%}
    {%- set columns = [spec['key']] + (spec['fields'].keys() | list) -%}
    {%- for system in spec['systems'] -%}
        {%- do columns.append(system ~ '_id') -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# md5 of everything a canonical row says, so snapshots and incremental runs see real change only. #}
{% macro canonical_row_hash(entity, relation_alias=none, extra_columns=[]) -%}
    {%- set prefix = (relation_alias ~ '.') if relation_alias else '' -%}
    md5(concat_ws('|',
        {%- for column in canonical_columns(entity) %}
            coalesce(cast({{ prefix }}{{ entity_name(column) }} as text), '<null>'),
        {%- endfor %}
        {%- for expression in extra_columns %}
            coalesce(cast({{ expression }} as text), '<null>'),
        {%- endfor %}
        ''
    ))
{%- endmacro %}

{#
    Post-hook of the incremental canonical tables: remove the rows whose entity no longer exists
    (its master record was deleted at the source, or is no longer the first-ranked one), which
    a run that writes only changed rows would otherwise keep for ever. The same rows
    canonical_select leaves out.
#}
{% macro delete_vanished(entity, by_system) -%}
    {%- set spec = tieout_entities()[entity] -%}
    {{ delete_unmatched(
        entity_name(spec['key']), by_system,
        "kept.system = " ~ entity_literal(spec['master']) ~ " and kept.duplicate_rank = 1"
    ) }}
{%- endmacro %}

{# Post-hook of a table that writes only changed rows: delete its rows whose key the relation it
   is derived from no longer holds (where condition, on that relation as `kept`, says how). #}
{% macro delete_unmatched(key, relation, condition=none) -%}
    delete from {{ this }} as current_rows
    where not exists (
        select 1
        from {{ relation }} as kept
        where
            kept.{{ key }} = current_rows.{{ key }}
            {%- if condition %}
                and {{ condition }}
            {%- endif %}
    )
{%- endmacro %}

{# The end of a model that writes only changed rows: under is_incremental(), keep the rows of
   `alias` that are new or whose _row_hash differs from the stored row's. #}
{% macro only_changed_rows(alias, key) -%}
    {%- if is_incremental() -%}
        left join {{ this }} as current_rows on {{ alias }}.{{ key }} = current_rows.{{ key }}
        where current_rows.{{ key }} is null or {{ alias }}._row_hash <> current_rows._row_hash
    {%- endif -%}
{%- endmacro %}


{# `alias.column, alias.column, ...` for a row constructor: (a.x, a.y) is distinct from (b.x, b.y). #}
{% macro columns_of(alias, columns) -%}
    {%- for column in columns -%}
        {{ alias }}.{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
