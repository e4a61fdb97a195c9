-- Why: every stage connects as its own role (tieout.db.ROLES). This makes the roles 0001 did
-- not, takes back 0001's grant of every ops table to the loader, and hands the tables a stage
-- built while it ran as the owner to that stage's role. What each role may touch is granted in
-- db/grants.sql, applied after every migration run; never grant a stage role anything here.

-- Roles are cluster-wide: two databases migrating at once may both try to create one.
do $$
declare
    role_name text;
begin
    foreach role_name in array array[
        'tieout_loader', 'tieout_transformer', 'tieout_validator', 'tieout_reconciler',
        'tieout_reverse_etl', 'tieout_analyst', 'tieout_finance'
    ] loop
        if not exists (select 1 from pg_roles where rolname = role_name) then
            begin
                execute format('create role %I login', role_name);
            exception
                when duplicate_object or unique_violation then
                    null;
                when insufficient_privilege then
                    raise exception 'role % does not exist and % cannot create roles',
                        role_name, current_user
                        using hint = 'create the stage roles as a superuser first '
                            '(docker/postgres-init.sh shows how), then migrate again';
            end;
        end if;
    end loop;
end
$$;

-- 0001 let the loader read and write every ops table, present and future; it gets its own
-- ops tables only (grants.sql).
revoke select, insert, update, delete on all tables in schema ops from tieout_loader;
revoke usage on all sequences in schema ops from tieout_loader;
revoke create on schema ops from tieout_loader;
alter default privileges in schema ops
    revoke select, insert, update, delete on tables from tieout_loader;
alter default privileges in schema ops revoke usage on sequences from tieout_loader;

-- Tables extract and dbt made while every stage ran as the owner now belong to the stage
-- that makes them, so it can replace, alter and analyze them as its own role.
do $$
declare
    rel record;
begin
    for rel in
        select c.oid::regclass as name, c.relkind, n.nspname
        from pg_class as c
        inner join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname in ('raw', 'staging', 'intermediate', 'canonical', 'finance')
            and c.relkind in ('r', 'p', 'v', 'm')
            and not c.relispartition
            and pg_get_userbyid(c.relowner) not in ('tieout_loader', 'tieout_transformer')
    loop
        execute format(
            'alter %s %s owner to %I',
            case rel.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
            rel.name,
            case when rel.nspname = 'raw' then 'tieout_loader' else 'tieout_transformer' end
        );
    end loop;
end
$$;
