-- A timestamp as PostgreSQL prints timestamp(3) without time zone (UTC wall clock): milliseconds
-- without their trailing zeros, none when whole.
create or replace temp macro pg_timestamp(value) as
regexp_replace(strftime(value, '%Y-%m-%d %H:%M:%S.%g'), '\.?0+$', '');

-- A UUID-shaped text from a hash of `seed` (stable across runs, as ids in a fixture should be).
create or replace temp macro uuid_text(seed) as
regexp_replace(md5(seed), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\1-\2-\3-\4-\5');
