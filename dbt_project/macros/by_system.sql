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
