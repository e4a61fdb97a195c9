-- why: raw tables are append-only, one row per distinct version; staging must see exactly
-- the latest version per key, and on incremental runs read only rows newer than it has.
{% macro latest_raw(source_name, table_name) -%}
    select
        raw_rows._pk,
        raw_rows._record,
        raw_rows._record_hash,
        raw_rows._extracted_at,
        raw_rows._run_id
    from (
        select
            r.*,
            row_number() over (
                partition by r._pk
                order by r._extracted_at desc, r._run_id desc, r._record_hash desc
            ) as _version_rank
        from {{ source(source_name, table_name) }} as r
        {% if is_incremental() -%}
            where r._extracted_at > (
                select coalesce(max(t._extracted_at), '-infinity'::timestamptz) from {{ this }} as t
            )
        {%- endif %}
    ) as raw_rows
    where raw_rows._version_rank = 1
{%- endmacro %}
