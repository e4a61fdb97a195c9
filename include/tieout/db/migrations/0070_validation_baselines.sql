-- Why: a night with little new data validates what changed. Each suite keeps the baseline of
-- its last validation (the run, the suite's hash, and for a raw table its identity and the
-- highest _seq it had read). validate_scope holds, per canonical suite, a hash per row as that
-- validation saw it (`<schema>__<table>__rows`; the rows whose hash differs are the changed
-- rows), and the changed rows of the suite being validated, as tables GX can read. Its tables
-- are unlogged and made by the validate stage: losing them means reading whole tables once.

create schema if not exists validate_scope;

create table if not exists ops.validation_baselines (
    suite        text        primary key,
    run_id       text        not null,
    suite_hash   text        not null,
    table_oid    bigint,
    watermark    bigint,
    mode         text        not null check (mode in ('full', 'changes')),
    validated_at timestamptz not null default now()
);

-- which rows an expectation read in a run: the whole table, or the changed rows only
alter table ops.validation_results add column if not exists scope text not null default 'table'
    check (scope in ('table', 'changes'));
