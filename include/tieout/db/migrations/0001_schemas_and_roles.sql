-- Why: every stage writes to its own schema and every reader gets a role with only
-- the grants in its row of DESIGN.md. Never grants analysts anything outside canonical/finance.

create schema if not exists raw;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists canonical;
create schema if not exists finance;
create schema if not exists recon;
create schema if not exists rev;
create schema if not exists ops;

do $$
declare
    role_name text;
begin
    foreach role_name in array array[
        'tieout_loader', 'tieout_transformer', 'tieout_analyst', 'tieout_finance'
    ] loop
        if not exists (select 1 from pg_roles where rolname = role_name) then
            execute format('create role %I login', role_name);
        end if;
    end loop;
end
$$;

-- loader: writes raw and its bookkeeping in ops
grant usage, create on schema raw, ops to tieout_loader;
grant select, insert, update, delete on all tables in schema raw, ops to tieout_loader;
alter default privileges in schema raw, ops
    grant select, insert, update, delete on tables to tieout_loader;
grant usage on all sequences in schema raw, ops to tieout_loader;
alter default privileges in schema raw, ops grant usage on sequences to tieout_loader;

-- transformer (dbt): reads raw, owns the modelled layers
grant usage on schema raw, ops to tieout_transformer;
grant select on all tables in schema raw to tieout_transformer;
alter default privileges in schema raw grant select on tables to tieout_transformer;
grant usage, create on schema staging, intermediate, canonical, finance to tieout_transformer;
grant all on all tables in schema staging, intermediate, canonical, finance to tieout_transformer;
alter default privileges in schema staging, intermediate, canonical, finance
    grant all on tables to tieout_transformer;

-- analyst: canonical and finance, read only
grant usage on schema canonical, finance to tieout_analyst;
grant select on all tables in schema canonical, finance to tieout_analyst;
alter default privileges in schema canonical, finance grant select on tables to tieout_analyst;

-- finance: canonical, finance and recon, read only
grant usage on schema canonical, finance, recon to tieout_finance;
grant select on all tables in schema canonical, finance, recon to tieout_finance;
alter default privileges in schema canonical, finance, recon
    grant select on tables to tieout_finance;

revoke create on schema public from public;
