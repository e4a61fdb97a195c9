-- why: a canonical table holds one row per real-world entity, so its count must equal the
-- count of distinct entities its master system defines (duplicates folded, extras dropped).
{% test row_count_matches(model, compare_model, compare_filter='true') %}
    with
    actual as (select count(*) as n from {{ model }}),
    expected as (select count(*) as n from {{ compare_model }} where {{ compare_filter }})
    select actual.n as actual_rows, expected.n as expected_rows
    from actual cross join expected
    where actual.n <> expected.n
{% endtest %}
