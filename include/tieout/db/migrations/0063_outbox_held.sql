-- Why: a write that the brake, an alert or the validation gate stopped waits in 'held' with its
-- reason until a person approves or discards it; nothing held is ever sent on its own.
alter table rev.outbox drop constraint if exists outbox_state_check;
alter table rev.outbox add constraint outbox_state_check check (state in (
    'planned', 'sent', 'acknowledged', 'verified', 'failed', 'dead', 'held', 'discarded'));
alter table rev.outbox add column if not exists held_reason text;
alter table rev.outbox add column if not exists held_at timestamptz;
drop index if exists rev.outbox_live_record_uq;
create unique index outbox_live_record_uq
    on rev.outbox (system, entity, record_key)
    where state in ('planned', 'sent', 'acknowledged', 'failed', 'held');
