-- Why: one row per stage per run, so `tieout summary` and the drift report can say what
-- each stage did. Stages only add rows for their own run; nothing here is ever rewritten.

create table if not exists ops.stage_runs (
    run_id      text        not null,
    stage       text        not null,
    status      text        not null check (status in ('running', 'success', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    figures     jsonb       not null default '{}'::jsonb,
    primary key (run_id, stage)
);

create index if not exists stage_runs_started_idx on ops.stage_runs (started_at desc);
