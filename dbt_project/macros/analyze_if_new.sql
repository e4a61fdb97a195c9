-- why: a freshly built table has no planner statistics (joins over it get nested loops), but
-- re-analysing a big table after an incremental run appended a few rows is wasted work.
{#
    Analyse only a table that has never been analysed (pg_class.reltuples < 0): every table
    a table model or a full refresh creates. Tables that grow by increments are left to
    autovacuum, whose threshold is exactly "enough rows changed to matter".
#}
{% macro analyze_if_new(relation) -%}
    do $$
    begin
        if (select c.reltuples < 0 from pg_class as c where c.oid = '{{ relation }}'::regclass) then
            analyze {{ relation }};
        end if;
    end
    $$
{%- endmacro %}
