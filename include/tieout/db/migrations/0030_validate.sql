-- Why: the validate stage's verdicts, one row per expectation per suite per run, so reverse ETL
-- can refuse an entity with a failed critical check and the drift report can show the warnings.
-- Rows of a run are replaced only by a rerun of that same run; other runs are never touched.

create table if not exists ops.validation_results (
    run_id          text        not null,
    suite           text        not null,
    expectation     text        not null,
    expectation_type text       not null,
    severity        text        not null check (severity in ('critical', 'warning')),
    entity          text,
    success         boolean     not null,
    observed_value  jsonb,
    unexpected_count bigint,
    failing_keys    jsonb       not null default '[]'::jsonb,
    description     text,
    exception       text,
    validated_at    timestamptz not null default now(),
    primary key (run_id, suite, expectation)
);

create index if not exists validation_results_failed_idx
    on ops.validation_results (run_id, entity) where not success;
