-- A related incident withdraws only changes still revocable on its business service or
-- configuration item, yet every win (most are incidents and requests) took an entry in both
-- lookups: two more b-tree inserts and their log records for each win, for entries nothing
-- reads. The lookups now hold changes only; the query names the kind as a literal so the planner
-- can use them.
DROP INDEX IF EXISTS wins_open_by_service;
DROP INDEX IF EXISTS wins_open_by_ci;
CREATE INDEX wins_open_by_service ON wins (business_service, revocable_until)
    WHERE kind = 'change_implemented';
CREATE INDEX wins_open_by_ci ON wins (configuration_item, revocable_until)
    WHERE kind = 'change_implemented';
