-- From this release on, a win's payload is written LZ4-packed (herald_runtime::payload), which
-- releases before it cannot read. The schema does not change; this migration is here so that an
-- older release started on this database refuses to start (it finds a migration it does not
-- know) instead of failing on every packed win it reads. Rows written before stay as they were
-- and are still read.
SELECT 1;
