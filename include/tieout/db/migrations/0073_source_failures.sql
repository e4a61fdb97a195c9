-- Why: a source that fails for a night must not take the night down, nor be mistaken for a
-- source whose differences were fixed. The extract stage records each stream that failed in a
-- run (from ops.extract_runs, written by the failing stream itself) with the run it has been
-- failing since; reconcile keeps that system's findings as they were and marks them stale,
-- reverse ETL skips writes that depend on it, and the report names it at its top.

create table if not exists ops.source_failures (
    run_id               text        not null,
    source               text        not null,
    stream               text        not null,
    status               text        not null,  -- failed | abandoned | running | not_recorded
    error                text        not null,
    failing_since        timestamptz not null,
    failing_since_run_id text        not null,
    recorded_at          timestamptz not null default now(),
    primary key (run_id, source, stream)
);

-- a finding whose comparison could not be made this run (its system, or the system its value
-- comes from, failed to extract): kept as it was, and flagged from the first such run on
alter table recon.findings add column if not exists stale_since timestamptz;
alter table recon.findings add column if not exists stale_since_run_id text;

-- the run's failed sources and how many findings they left stale, for the report and the page
alter table recon.drift_runs
    add column if not exists stale_sources jsonb not null default '[]'::jsonb;
alter table recon.drift_runs add column if not exists stale_findings integer not null default 0;
