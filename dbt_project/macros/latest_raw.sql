-- why: raw tables are append-only, one row per distinct version; staging must see exactly
-- the latest version per key, and on incremental runs read only rows newer than it has.
{#
    Latest = highest _extracted_at, then highest _seq (extract's insertion order). A key whose
    latest version is a deletion marker (_deleted) is kept with _deleted = true, so the
    incremental delete+insert replaces the old row and downstream models leave it out.
#}
{% macro latest_raw(source_name, table_name) -%}
    select
        raw_rows._pk,
        raw_rows._record,
        raw_rows._record_hash,
        raw_rows._extracted_at,
        raw_rows._run_id,
        raw_rows._deleted
    from (
        select
            r.*,
            row_number() over (
                partition by r._pk
                order by r._extracted_at desc, r._seq desc
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
