-- Why: the one place that says what each stage's role may touch (DESIGN.md, "Warehouse
-- schemas"). Applied by `tieout db migrate` after the migrations, every time, so a new table
-- gets its grants by a line here. Every statement must stay idempotent. Removing a line does
-- not revoke: take a privilege back with a migration. Never grant a stage role the owner's
-- work (schemas, roles, migrations) or another stage's schema to write.
--
-- Roles (tieout.db.ROLES): tieout_loader (extract), tieout_transformer (dbt),
-- tieout_validator (validate), tieout_reconciler (reconcile, report), tieout_reverse_etl
-- (reverse ETL); tieout_analyst and tieout_finance are readers.
--
-- "alter default privileges" without "for role" covers tables the owner (migrations) makes;
-- "for role tieout_loader" / "for role tieout_transformer" covers the tables those stages make.

-- every stage: look up ops names, and record itself in ops.stage_runs
grant usage on schema ops
    to tieout_loader, tieout_transformer, tieout_validator, tieout_reconciler, tieout_reverse_etl;
grant select, insert, update on ops.stage_runs
    to tieout_loader, tieout_transformer, tieout_validator, tieout_reconciler, tieout_reverse_etl;
-- ...and only its own rows: a stage reads every stage's row but writes its own stages only
-- (the owner, which records `prepare`, is not bound by these policies)
alter table ops.stage_runs enable row level security;
drop policy if exists stage_runs_read on ops.stage_runs;
create policy stage_runs_read on ops.stage_runs for select using (true);
drop policy if exists stage_runs_own on ops.stage_runs;
create policy stage_runs_own on ops.stage_runs for all
    using (
        (pg_has_role('tieout_loader', 'usage') and (stage = 'extract' or stage like 'extract:%'))
        or (pg_has_role('tieout_transformer', 'usage') and stage = 'transform')
        or (pg_has_role('tieout_validator', 'usage') and (stage = 'validate' or stage like 'validate:%'))
        or (pg_has_role('tieout_reconciler', 'usage') and stage in ('reconcile', 'report'))
        or (pg_has_role('tieout_reverse_etl', 'usage') and stage = 'reverse_etl')
    );

-- extract: creates and owns raw.<source>__<stream>; writes its own bookkeeping in ops
grant usage, create on schema raw to tieout_loader;
grant select, insert, update, delete on
    ops.sync_state, ops.quarantine, ops.stream_fields, ops.schema_changes, ops.extract_runs,
    ops.request_budget
    to tieout_loader;

-- raw is read by dbt and by validate's raw contracts
grant usage on schema raw to tieout_transformer, tieout_validator;
grant select on all tables in schema raw to tieout_transformer, tieout_validator;
alter default privileges in schema raw grant select on tables to tieout_transformer, tieout_validator;
alter default privileges for role tieout_loader in schema raw
    grant select on tables to tieout_transformer, tieout_validator;
-- dbt's rerun plan reads how far each raw table's _seq has counted (pg_sequence_last_value)
grant select on all sequences in schema raw to tieout_transformer;
alter default privileges in schema raw grant select on sequences to tieout_transformer;
alter default privileges for role tieout_loader in schema raw
    grant select on sequences to tieout_transformer;

-- dbt: creates and owns every relation in staging, intermediate, canonical, finance
grant usage, create on schema staging, intermediate, canonical, finance to tieout_transformer;

-- the modelled layers' readers
grant usage on schema canonical, finance to tieout_validator, tieout_reconciler, tieout_reverse_etl;
grant usage on schema intermediate to tieout_reconciler;
grant select on all tables in schema canonical, finance
    to tieout_analyst, tieout_finance, tieout_validator, tieout_reconciler, tieout_reverse_etl;
grant select on all tables in schema intermediate to tieout_reconciler;
alter default privileges in schema canonical, finance grant select on tables
    to tieout_analyst, tieout_finance, tieout_validator, tieout_reconciler, tieout_reverse_etl;
alter default privileges in schema intermediate grant select on tables to tieout_reconciler;
alter default privileges for role tieout_transformer in schema canonical, finance
    grant select on tables
    to tieout_analyst, tieout_finance, tieout_validator, tieout_reconciler, tieout_reverse_etl;
alter default privileges for role tieout_transformer in schema intermediate
    grant select on tables to tieout_reconciler;

-- validate: its verdicts
grant select, insert, update, delete on ops.validation_results to tieout_validator;
grant select on ops.validation_results to tieout_reconciler, tieout_reverse_etl;

-- reconcile and report: write recon (tables made by migrations)
grant usage on schema recon to tieout_reconciler, tieout_reverse_etl, tieout_finance;
grant select, insert, update, delete on all tables in schema recon to tieout_reconciler;
alter default privileges in schema recon
    grant select, insert, update, delete on tables to tieout_reconciler;
grant select on all tables in schema recon to tieout_reverse_etl, tieout_finance;
alter default privileges in schema recon grant select on tables to tieout_reverse_etl, tieout_finance;

-- reverse ETL: writes rev; the report and finance read what it did (0050 granted finance
-- SELECT on rev's tables without USAGE on the schema, so finance could read none of them)
grant usage on schema rev to tieout_reverse_etl, tieout_reconciler, tieout_finance;
grant select, insert, update, delete on all tables in schema rev to tieout_reverse_etl;
alter default privileges in schema rev
    grant select, insert, update, delete on tables to tieout_reverse_etl;
grant select on all tables in schema rev to tieout_reconciler, tieout_finance;
alter default privileges in schema rev grant select on tables to tieout_reconciler, tieout_finance;

-- builds and the validations bound to them (the reverse ETL gate): transform records the build,
-- validate what it checked (with per-row hashes of the written fields), reverse ETL and the
-- report read both
grant select, insert, update on ops.builds to tieout_transformer;
grant select on ops.builds to tieout_validator, tieout_reconciler, tieout_reverse_etl;
grant select, insert, update, delete on ops.validations, ops.validated_rows to tieout_validator;
-- validate: the baselines of incremental validation, and the changed rows it reads
grant select, insert, update, delete on ops.validation_baselines to tieout_validator;
grant usage, create on schema validate_scope to tieout_validator;
grant select on ops.validations, ops.validated_rows to tieout_reconciler, tieout_reverse_etl;

-- integration metrics: extract and reverse ETL write one row per stream or target and run (and
-- prune the old ones); health (run as the reconciler: it reads findings and raises alerts)
-- judges them and keeps the states; the Airflow plugin reads them as finance does
grant select, insert, update, delete on ops.integration_metrics to tieout_loader, tieout_reverse_etl;
grant select on ops.integration_metrics, ops.extract_runs, ops.sync_state to tieout_reconciler;
grant select, insert, update, delete on ops.integration_health to tieout_reconciler;
grant usage on schema ops to tieout_finance;
grant select on ops.integration_metrics, ops.integration_health, ops.extract_runs, ops.sync_state
    to tieout_finance;

-- a night's failed sources: extract records them, reconcile, reverse ETL, the report and the
-- Drift reports page (with every stage's row of every night) read them
grant select, insert, update, delete on ops.source_failures to tieout_loader;
grant select on ops.source_failures
    to tieout_reconciler, tieout_reverse_etl, tieout_finance;
grant select on ops.stage_runs to tieout_finance;

-- webhooks: the receiver loads events as extract does
grant select, insert, update on ops.webhook_events to tieout_loader;
