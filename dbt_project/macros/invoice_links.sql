-- why: the rule that ties a billing invoice to its invoice (the ERP invoice its
-- metadata.erp_invoice_no names) is read by invoices and by payments; one macro keeps it one
-- rule, and lets int_payments_by_system read staging instead of waiting for all invoices. The
-- rule that ties an ERP invoice to its order is canonical.invoices' three times over.
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


{# Every ERP invoice with the ERP sales order it was raised for, as int_orders_by_system has that
   order: its canonical order_id (null while the order has no shop order) and when its row was
   written. #}
{% macro erp_invoice_orders() -%}
    select
        invoices.invoice_id,
        invoices.system_key as invoice_no,
        orders.order_id,
        orders._loaded_at
    from {{ ref('int_invoices_by_system') }} as invoices
    inner join {{ ref('int_orders_by_system') }} as orders
        on invoices.system_order_key = orders.system_key and orders.system = 'erp'
    where invoices.system = 'erp'
{%- endmacro %}
