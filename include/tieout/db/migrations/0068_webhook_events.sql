-- Why: webhooks tell tieout a source changed, so its extract runs soon instead of at night.
-- Every delivery is one row: accepted once per (source, event id), or rejected with a reason.
-- Never stores a request body, a signature or a secret.

create table if not exists ops.webhook_events (
    id           bigint generated always as identity primary key,
    source       text        not null,
    event_id     text,
    event_type   text,
    object_id    text,
    status       text        not null check (status in ('accepted', 'rejected')),
    reason       text,
    signed_at    timestamptz,
    received_at  timestamptz not null default now(),
    triggered_at timestamptz,
    trigger_run  text,
    check ((status = 'accepted') = (reason is null))
);

-- An event id is accepted at most once per source: a replay finds this row and is refused.
create unique index if not exists webhook_events_accepted_uq
    on ops.webhook_events (source, event_id) where status = 'accepted';

create index if not exists webhook_events_received_idx
    on ops.webhook_events (source, received_at desc);
