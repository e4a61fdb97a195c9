-- Why: reconcile's memory. Findings keep their whole life (first seen, last seen, resolved,
-- waived with who/when/why); balances and drift runs are per run. Rows are never deleted.

-- Digits after the decimal point per ISO 4217 currency; money is compared at this precision.
create or replace function recon.minor_units(currency text) returns integer
language sql immutable parallel safe
as $$
select case upper(btrim(currency))
    when 'BIF' then 0 when 'CLP' then 0 when 'DJF' then 0 when 'GNF' then 0
    when 'ISK' then 0 when 'JPY' then 0 when 'KMF' then 0 when 'KRW' then 0
    when 'PYG' then 0 when 'RWF' then 0 when 'UGX' then 0 when 'UYI' then 0
    when 'VND' then 0 when 'VUV' then 0 when 'XAF' then 0 when 'XOF' then 0
    when 'XPF' then 0
    when 'BHD' then 3 when 'IQD' then 3 when 'JOD' then 3 when 'KWD' then 3
    when 'LYD' then 3 when 'OMR' then 3 when 'TND' then 3
    else 2
end
$$;

-- One row per difference per episode: from the run that first saw it until the run that
-- saw it gone. A difference that comes back later opens a new row.
create table if not exists recon.findings (
    finding_id        bigint generated always as identity primary key,
    entity            text        not null,
    system            text        not null,
    kind              text        not null check (kind in (
                          'missing_in_system', 'extra_in_system', 'value_mismatch',
                          'duplicate_key', 'null_key')),
    field             text        not null default '',
    -- the canonical key as {column: value}; for extra_in_system and null_key the system's key
    finding_key       jsonb       not null,
    entity_key        jsonb,
    entity_ref        text,
    system_keys       jsonb       not null default '[]'::jsonb,
    source_of_truth   text,
    canonical_value   text,
    system_value      text,
    currency          text,
    money_impact      numeric(20, 4),
    status            text        not null default 'open'
                          check (status in ('open', 'resolved', 'waived')),
    first_seen_run_id text        not null,
    first_seen_at     timestamptz not null default now(),
    last_seen_run_id  text        not null,
    last_seen_at      timestamptz not null default now(),
    times_seen        integer     not null default 1,
    resolved_run_id   text,
    resolved_at       timestamptz,
    waived_by         text,
    waived_at         timestamptz,
    waive_reason      text,
    check (status <> 'waived' or (waived_by is not null and waive_reason is not null))
);

create unique index if not exists findings_live_uq
    on recon.findings (entity, system, kind, field, finding_key)
    where status <> 'resolved';
create index if not exists findings_status_idx on recon.findings (status, entity);
create index if not exists findings_first_run_idx on recon.findings (first_seen_run_id);
create index if not exists findings_resolved_run_idx on recon.findings (resolved_run_id);

-- Every waiver (and un-waiver), so a finding's status never changes without a name on it.
create table if not exists recon.finding_audit (
    audit_id   bigint generated always as identity primary key,
    finding_id bigint      not null references recon.findings (finding_id),
    action     text        not null check (action in ('waive', 'unwaive')),
    actor      text        not null,
    reason     text        not null check (length(btrim(reason)) > 0),
    old_status text        not null,
    new_status text        not null,
    at         timestamptz not null default now()
);
create index if not exists finding_audit_finding_idx on recon.finding_audit (finding_id);

-- Cross-entity balances of one run: every subject that does not balance, with both sides.
create table if not exists recon.balances (
    run_id      text           not null,
    check_name  text           not null check (check_name in (
                    'invoice_payments', 'customer_payments', 'order_invoice',
                    'payment_invoice')),
    subject_key text           not null,
    subject_ref text,
    customer_id text,
    currency    text,
    expected    numeric(20, 4),
    actual      numeric(20, 4),
    difference  numeric(20, 4),
    outcome     text           not null check (outcome in (
                    'unpaid', 'underpaid', 'overpaid', 'paid_amount_mismatch',
                    'order_without_invoice', 'amount_mismatch', 'currency_mismatch',
                    'payment_without_invoice')),
    detail      jsonb          not null default '{}'::jsonb,
    computed_at timestamptz    not null default now(),
    primary key (run_id, check_name, subject_key, outcome)
);

-- One row per run: what reconcile found, the alerts it raised, where the report is.
create table if not exists recon.drift_runs (
    run_id            text        primary key,
    reconciled_at     timestamptz not null default now(),
    entities          jsonb       not null default '{}'::jsonb,
    open_findings     integer     not null default 0,
    new_findings      integer     not null default 0,
    resolved_findings integer     not null default 0,
    waived_findings   integer     not null default 0,
    money_at_stake    jsonb       not null default '{}'::jsonb,
    by_system         jsonb       not null default '{}'::jsonb,
    balances          jsonb       not null default '{}'::jsonb,
    alert_status      text        not null default 'ok' check (alert_status in ('ok', 'alert')),
    alerts            jsonb       not null default '[]'::jsonb,
    duration_s        double precision,
    report_html       text,
    report_csv        text,
    reported_at       timestamptz
);
create index if not exists drift_runs_reconciled_idx on recon.drift_runs (reconciled_at desc);

grant select on all tables in schema recon to tieout_finance;
