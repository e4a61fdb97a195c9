-- why: the rule that ties a billing invoice to its invoice (the ERP invoice its
-- metadata.erp_invoice_no names) is read by invoices and by payments; one macro keeps it one
-- rule, and lets int_payments_by_system read staging instead of waiting for all invoices.
{#
    One row per live billing invoice that names a live ERP invoice: billing_invoice_id and the
    canonical invoice_id (md5 of the ERP invoice number, as int_invoices_by_system keys it).
    billing_ids, a query of billing invoice ids, limits it to those.
#}
{% macro billing_invoice_links(billing_ids=none) -%}
    select
        billing.billing_invoice_id,
        {{ surrogate_key('erp.invoice_no') }} as invoice_id
    from {{ ref('stg_billing__invoices') }} as billing
    inner join {{ ref('stg_erp__invoices') }} as erp on billing.erp_invoice_no = erp.invoice_no
    where
        not billing._deleted
        and not erp._deleted
        {%- if billing_ids %}
            and billing.billing_invoice_id in ({{ billing_ids }})
        {%- endif %}
{%- endmacro %}
