-- A signal is looked up by its configuration item or its business service only with one to match
-- (`configuration_item = …`, `business_service = …`), so an index entry for a signal that names
-- none was never read. Many incidents name no configuration item (and every row of an export
-- without a `cmdb_ci` column): each of them still took an entry, a log record and a page change.
-- Both planners use these partial indexes for both lookups (an arm of an OR included), as they
-- used the full ones.
DROP INDEX signals_by_ci;
CREATE INDEX signals_by_ci ON signals (configuration_item, at) WHERE configuration_item IS NOT NULL;
DROP INDEX signals_by_service;
CREATE INDEX signals_by_service ON signals (business_service, at) WHERE business_service IS NOT NULL;
