-- why: the by-system models of orders and invoices recompute only the records that can have
-- changed; these are the pieces they share.

{# The newest staging version a by-system table has taken in for one system's records: a later
   one is a change the run must take in (staging's own incremental runs read raw the same way). #}
{% macro taken_in_until(relation, system) -%}
    (
        select coalesce(max(taken._extracted_at), '-infinity'::timestamptz)
        from {{ relation }} as taken
        where taken.system = '{{ system }}'
    )
{%- endmacro %}

{# Post-hook: remove the rows of one system's records whose latest staging version is a deletion
   (a run that recomputes only changed records writes no row for them, and so removes none). #}
{% macro delete_deleted_records(relation, system, staging, key) -%}
    delete from {{ relation }} as current_rows
    where
        current_rows.system = '{{ system }}'
        and exists (
            select 1
            from {{ staging }} as records
            where records._deleted and records.{{ key }} = current_rows.system_key
        )
{%- endmacro %}


{# The rows whose customer the crosswalk now resolves to another canonical customer. #}
{% macro rekeyed_rows(relation) -%}
    select
        previous.system,
        previous.system_key
    from {{ relation }} as previous
    left join {{ ref('int_customers_crosswalk') }} as crosswalk
        on previous.system = crosswalk.system and previous.system_customer_key = crosswalk.system_key
    where crosswalk.customer_id is distinct from previous.customer_id
{%- endmacro %}


{# The groups (entity, system) the touched rows were in: the ones they may leave. #}
{% macro groups_left(relation, key) -%}
    select
        previous.{{ key }},
        previous.system
    from {{ relation }} as previous
    where
        previous.{{ key }} is not null
        and (previous.system, previous.system_key) in (select touched.system, touched.system_key from touched)
{%- endmacro %}


{# The rows a run recomputes: the touched ones and every row of a group they leave or join. #}
{% macro affected_rows(relation, key) -%}
    select
        touched.system,
        touched.system_key
    from touched
    union
    select
        previous.system,
        previous.system_key
    from {{ relation }} as previous
    where (previous.{{ key }}, previous.system) in (
        select touched_groups.{{ key }}, touched_groups.system from touched_groups
    )
{%- endmacro %}
