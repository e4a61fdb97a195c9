-- why: what customers still owe, by how overdue it is, as of the run's date; a rerun for the
-- same date gives the same answer, so the as-of date comes from the run, never from now().
-- The run's date arrives as TIEOUT_AS_OF_DATE (a var that changed nightly would make dbt parse
-- the whole project); a var given by hand wins; today when neither is set.
{%- set as_of_date = var("as_of_date")
    or env_var("TIEOUT_AS_OF_DATE", "")
    or run_started_at.strftime("%Y-%m-%d") %}

with

as_of as (
    select cast('{{ as_of_date }}' as date) as as_of_date
),

open_items as (
    select *
    from {{ ref('invoice_payment_status') }}
    where status <> 'void' and outstanding_amount > 0
)

select
    open_items.invoice_id,
    open_items.erp_invoice_no,
    open_items.customer_id,
    open_items.currency,
    open_items.amount,
    open_items.paid_amount,
    open_items.outstanding_amount,
    open_items.issued_at,
    open_items.due_at,
    as_of.as_of_date,
    greatest(as_of.as_of_date - open_items.due_at, 0) as days_overdue,
    case
        when open_items.due_at is null or as_of.as_of_date <= open_items.due_at then 'not_due'
        when as_of.as_of_date - open_items.due_at <= 30 then '1-30'
        when as_of.as_of_date - open_items.due_at <= 60 then '31-60'
        when as_of.as_of_date - open_items.due_at <= 90 then '61-90'
        else '90+'
    end as aging_bucket
from open_items
cross join as_of
