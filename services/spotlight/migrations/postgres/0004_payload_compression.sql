-- Kept payloads are compressed with lz4 where the server has it (PostgreSQL 14+ built with lz4, as
-- the common packages are): pglz, the default, was the largest single function in PostgreSQL's
-- profile under load (7 % of its time). Elsewhere the default stays, and nothing else changes.
DO $$
BEGIN
  EXECUTE 'ALTER TABLE wins ALTER COLUMN payload SET COMPRESSION lz4';
  EXECUTE 'ALTER TABLE announcements ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'payloads keep the default compression: %', SQLERRM;
END
$$;
