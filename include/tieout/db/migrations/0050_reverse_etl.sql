-- Why: reverse ETL's outbox. Every intended write is a row before anything is sent, so a crash
-- at any moment loses nothing and repeats nothing; rows are never deleted, only moved on.

create table if not exists rev.outbox (
    outbox_id        bigint generated always as identity primary key,
    -- entity, record, fields and a hash of the target values: the same intent, the same key
    idempotency_key  text        not null unique,
    system           text        not null,
    entity           text        not null,
    record_key       text        not null,
    entity_ref       text,
    fields           text[]      not null,
    -- the first finding the write corrects (the drift report joins on it) and all of them
    finding_id       bigint,
    finding_ids      bigint[]    not null default '{}',
    canonical_values jsonb       not null,
    target_values    jsonb       not null,
    method           text        not null,
    path             text        not null,
    -- the exact request body: a resend under the same Idempotency-Key must be byte-identical
    body             text        not null,
    -- bumped when a read-back shows an acknowledged write was not applied (new header key)
    send_generation  integer     not null default 0,
    state            text        not null default 'planned' check (state in (
                         'planned', 'sent', 'acknowledged', 'verified', 'failed', 'dead')),
    attempts         integer     not null default 0,
    last_error       text,
    response_status  integer,
    planned_run_id   text        not null,
    last_run_id      text,
    created_at       timestamptz not null default now(),
    sent_at          timestamptz,
    acknowledged_at  timestamptz,
    verified_at      timestamptz,
    updated_at       timestamptz not null default now()
);

-- At most one write in flight per record of a target: a second intent waits for the first.
create unique index if not exists outbox_live_record_uq
    on rev.outbox (system, entity, record_key)
    where state in ('planned', 'sent', 'acknowledged', 'failed');
create index if not exists outbox_state_idx on rev.outbox (system, entity, state, outbox_id);
create index if not exists outbox_finding_idx on rev.outbox (finding_id);

-- Why a run skipped an entity or target (validation gate, disabled target), per run.
create table if not exists rev.skips (
    run_id     text        not null,
    system     text        not null,
    entity     text        not null,
    reason     text        not null,
    skipped_at timestamptz not null default now(),
    primary key (run_id, system, entity)
);

grant select on all tables in schema rev to tieout_finance;
