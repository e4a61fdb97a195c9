-- Why: integration health. One row per stream (extract) or target (reverse ETL) per run with
-- what its HTTP client saw, and the last judged state of each integration so alerts fire on a change.

create table if not exists ops.integration_metrics (
    run_id             text        not null,
    -- 'extract': source and stream; 'reverse_etl': target system and entity
    direction          text        not null check (direction in ('extract', 'reverse_etl')),
    source             text        not null,
    stream             text        not null,
    status             text        not null check (status in ('success', 'failed')),
    requests           bigint      not null default 0,
    errors_4xx         bigint      not null default 0,
    errors_5xx         bigint      not null default 0,
    errors_timeout     bigint      not null default 0,
    errors_connection  bigint      not null default 0,
    http_429           bigint      not null default 0,
    wait_429_s         double precision not null default 0,
    latency_p50_ms     double precision,
    latency_p95_ms     double precision,
    latency_p99_ms     double precision,
    records            bigint      not null default 0,
    records_per_s      double precision,
    quarantined        bigint      not null default 0,
    quarantine_share   double precision,
    newest_cursor      timestamptz,
    freshness_lag_s    double precision,
    circuit_open       boolean     not null default false,
    duration_s         double precision not null default 0,
    error              text,
    recorded_at        timestamptz not null default now(),
    primary key (run_id, direction, source, stream)
);
create index if not exists integration_metrics_recent_idx
    on ops.integration_metrics (direction, source, recorded_at desc);

-- The state each integration (a source, a reverse-ETL target, an entity's divergence) was last
-- judged to be in; a new judgement that differs is an alert.
create table if not exists ops.integration_health (
    kind       text        not null check (kind in ('source', 'target', 'divergence')),
    name       text        not null,
    state      text        not null check (state in ('healthy', 'degraded', 'failing')),
    rule       text        not null,
    detail     text        not null,
    run_id     text,
    since      timestamptz not null default now(),
    judged_at  timestamptz not null default now(),
    primary key (kind, name)
);
