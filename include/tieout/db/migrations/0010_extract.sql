-- Why: extract's bookkeeping: where each stream resumes, what it could not load, how its
-- shape changed and what each run did. Never holds source secrets; raw tables are made on demand.

-- One row per (source, stream). `cursor_value` is the high-water mark of the last completed
-- pass; `resume` is the next page request of a pass still in flight. Both are written in the
-- same transaction as the raw rows they cover.
create table if not exists ops.sync_state (
    source            text        not null,
    stream            text        not null,
    cursor_value      text,
    last_completed_at timestamptz,
    pass_id           text,
    pass_from         text,
    pass_full_refresh boolean     not null default false,
    pass_cursor_max   text,
    pass_records      bigint      not null default 0,
    pass_pages        bigint      not null default 0,
    pass_api_total    bigint,
    resume            jsonb,
    run_id            text,
    updated_at        timestamptz not null default now(),
    primary key (source, stream)
);

-- Records and pages that could not be loaded, once per distinct raw text.
create table if not exists ops.quarantine (
    id             bigint generated always as identity primary key,
    source         text        not null,
    stream         text        not null,
    reason         text        not null,
    raw_text       text        not null,
    raw_hash       text        not null,
    pk             text,
    source_url     text,
    first_run_id   text        not null,
    last_run_id    text        not null,
    times_seen     integer     not null default 1,
    quarantined_at timestamptz not null default now(),
    last_seen_at   timestamptz not null default now(),
    unique (source, stream, raw_hash)
);

-- The fields each stream has served so far (dotted paths, JSON type names).
create table if not exists ops.stream_fields (
    source     text        not null,
    stream     text        not null,
    field      text        not null,
    json_type  text        not null,
    first_seen timestamptz not null default now(),
    last_seen  timestamptz not null default now(),
    primary key (source, stream, field)
);

create table if not exists ops.schema_changes (
    id          bigint generated always as identity primary key,
    source      text        not null,
    stream      text        not null,
    run_id      text        not null,
    field       text        not null,
    change      text        not null check (change in ('added', 'missing', 'retyped')),
    old_type    text,
    new_type    text,
    records     bigint,
    detected_at timestamptz not null default now()
);
create index if not exists schema_changes_stream_idx on ops.schema_changes (source, stream, detected_at);

-- Figures per stream per run; counters are added in the transaction of the rows they count,
-- so a killed and resumed run still adds up.
create table if not exists ops.extract_runs (
    run_id       text        not null,
    source       text        not null,
    stream       text        not null,
    status       text        not null check (status in ('running', 'success', 'failed')),
    full_refresh boolean     not null default false,
    records      bigint      not null default 0,
    rows         bigint      not null default 0,
    unchanged    bigint      not null default 0,
    pages        bigint      not null default 0,
    bytes        bigint      not null default 0,
    retries      bigint      not null default 0,
    http_429     bigint      not null default 0,
    quarantined  bigint      not null default 0,
    deleted      bigint      not null default 0,
    api_total    bigint,
    total_diff   bigint,
    schema_changes integer   not null default 0,
    duration_s   double precision not null default 0,
    error        text,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    primary key (run_id, source, stream)
);
create index if not exists extract_runs_started_idx on ops.extract_runs (started_at desc);

-- Shared request budget per source: a token bucket every task of a source draws from.
create table if not exists ops.request_budget (
    source       text             primary key,
    tokens       double precision not null,
    capacity     double precision not null,
    rate         double precision not null,
    refreshed_at timestamptz      not null default clock_timestamp()
);
