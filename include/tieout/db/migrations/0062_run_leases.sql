-- Why: a run killed with SIGKILL (OOM, a lost Celery worker) cannot write its own end, so its
-- rows stayed `running` forever. A running stage now holds a lease it renews while it works;
-- the next stage to start marks rows whose lease ran out `abandoned`, saying when and by whom.

alter table ops.stage_runs drop constraint if exists stage_runs_status_check;
alter table ops.stage_runs add constraint stage_runs_status_check
    check (status in ('running', 'success', 'failed', 'abandoned'));
alter table ops.stage_runs
    -- the process that runs the stage: host name, its pid namespace and pid
    add column if not exists host             text,
    add column if not exists pid_namespace    text,
    add column if not exists pid              integer,
    -- renewed by the running process; past lease_expires_at nobody holds the run any more
    add column if not exists heartbeat_at     timestamptz,
    add column if not exists lease_expires_at timestamptz,
    add column if not exists abandoned_at     timestamptz,
    add column if not exists abandoned_by     text;

alter table ops.extract_runs drop constraint if exists extract_runs_status_check;
alter table ops.extract_runs add constraint extract_runs_status_check
    check (status in ('running', 'success', 'failed', 'abandoned'));
alter table ops.extract_runs
    add column if not exists abandoned_at timestamptz,
    add column if not exists abandoned_by text;

-- Rows left running by a version without leases: a day after they started nobody holds them.
update ops.stage_runs set lease_expires_at = started_at + interval '1 day'
where status = 'running' and lease_expires_at is null;

create index if not exists stage_runs_running_idx on ops.stage_runs (lease_expires_at)
    where status = 'running';
