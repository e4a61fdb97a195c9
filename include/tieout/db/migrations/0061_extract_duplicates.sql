-- Why: a key served twice in one page is loaded once (one version kept deterministically);
-- the run counts how many such duplicates it dropped so a source's bug stays visible.

alter table ops.extract_runs add column if not exists duplicates bigint not null default 0;

comment on column ops.extract_runs.duplicates is
    'records dropped because their key appeared again in the same page (one version kept)';
