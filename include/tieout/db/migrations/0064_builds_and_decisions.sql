-- Why: reverse ETL may write only what a validation passed, so a validation is bound to the
-- build it checked and keeps a fingerprint of every field reverse ETL may write; and every
-- release or drop of held writes names who decided and why. Rows are added, never rewritten.

-- one row per transform that wrote canonical tables (CLI `tieout transform` or the DAG)
create table if not exists ops.builds (
    build_id       text        primary key,
    run_id         text        not null,
    path           text        not null,
    canonical_rows jsonb       not null default '{}'::jsonb,
    built_at       timestamptz not null default now()
);
create index if not exists builds_built_at_idx on ops.builds (built_at desc);

-- which build a run's validation checked (a rerun of the same run's validation replaces it)
create table if not exists ops.validations (
    run_id       text        primary key,
    build_id     text        references ops.builds (build_id),
    validated_at timestamptz not null default now()
);

-- per validated row: field -> hash of the canonical value reverse ETL may write
create table if not exists ops.validated_rows (
    run_id      text  not null references ops.validations (run_id) on delete cascade,
    entity      text  not null,
    record_key  text  not null,
    fingerprint jsonb not null,
    primary key (run_id, entity, record_key)
);

create table if not exists rev.decisions (
    decision_id bigint      generated always as identity primary key,
    decision    text        not null check (decision in ('approve', 'discard')),
    system      text        not null,
    entity      text,
    field       text,
    reason      text        not null check (length(trim(reason)) > 0),
    decided_by  text        not null,
    outbox_ids  bigint[]    not null,
    rows        integer     not null,
    decided_at  timestamptz not null default now()
);

grant select on rev.decisions to tieout_finance;
