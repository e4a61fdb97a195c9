#!/usr/bin/env bash
# Runs once, as the postgres superuser, on a fresh data volume: the Airflow and warehouse
# databases with their own owners, and every stage role (tieout.db.ROLES) with its password.
# The warehouse owner is no superuser and cannot create roles: the roles are made here, and the
# owner is made a member of the stage roles so its migrations can set default privileges for
# them and hand them the tables they make (include/tieout/db/grants.sql, migration 0060).
# Passwords arrive as psql variables, never inside the SQL text.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v airflow_password="${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD}" \
    -v owner_password="${WAREHOUSE_PASSWORD:?set WAREHOUSE_PASSWORD}" \
    -v loader_password="${WAREHOUSE_LOADER_PASSWORD:?set WAREHOUSE_LOADER_PASSWORD}" \
    -v transformer_password="${WAREHOUSE_TRANSFORMER_PASSWORD:?set WAREHOUSE_TRANSFORMER_PASSWORD}" \
    -v validator_password="${WAREHOUSE_VALIDATOR_PASSWORD:?set WAREHOUSE_VALIDATOR_PASSWORD}" \
    -v reconciler_password="${WAREHOUSE_RECONCILER_PASSWORD:?set WAREHOUSE_RECONCILER_PASSWORD}" \
    -v reverse_etl_password="${WAREHOUSE_REVERSE_ETL_PASSWORD:?set WAREHOUSE_REVERSE_ETL_PASSWORD}" \
    -v finance_password="${WAREHOUSE_FINANCE_PASSWORD:?set WAREHOUSE_FINANCE_PASSWORD}" \
    <<'SQL'
create role airflow login password :'airflow_password';
create role tieout login password :'owner_password';
create database airflow owner airflow;
create database tieout owner tieout;

-- the analyst role is for people: an administrator gives it a password when one is needed
select format('create role %I login', name)
    || case when secret is null then '' else format(' password %L', secret) end
from (values
    ('tieout_loader', :'loader_password'),
    ('tieout_transformer', :'transformer_password'),
    ('tieout_validator', :'validator_password'),
    ('tieout_reconciler', :'reconciler_password'),
    ('tieout_reverse_etl', :'reverse_etl_password'),
    ('tieout_finance', :'finance_password'),
    ('tieout_analyst', null)
) as roles (name, secret)
where not exists (select from pg_roles where rolname = roles.name)
\gexec

grant tieout_loader, tieout_transformer, tieout_validator, tieout_reconciler,
    tieout_reverse_etl to tieout;
SQL
