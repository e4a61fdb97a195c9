-- Why: a night with little new data validates what changed. Each suite keeps the baseline of
-- its last validation (the run, the suite's hash, and for a raw table its identity and the
-- highest _seq it had read), and each canonical table a hash per row as that validation saw
-- it; the rows whose hash differs are the changed rows. validate_scope holds the changed rows
-- of one validation, as tables GX can read (replaced by the next validation).

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

create table if not exists ops.validated_row_hashes (
    suite      text not null,
    record_key text not null,
    row_hash   text not null,
    primary key (suite, record_key)
);

-- which rows an expectation read in a run: the whole table, or the changed rows only
alter table ops.validation_results add column if not exists scope text not null default 'table'
    check (scope in ('table', 'changes'));
