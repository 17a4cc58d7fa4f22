-- A resolved incident withdraws the changes still revocable on its business service or
-- configuration item. Without an index on the configuration item the lookup read every win for
-- every incident (the benchmark's runs slowed as wins accumulated); these find only the wins of
-- that service or item, of the kinds it withdraws, whose window is still open.
DROP INDEX wins_by_service;
CREATE INDEX wins_open_by_service ON wins (business_service, kind, revocable_until);
CREATE INDEX wins_open_by_ci ON wins (configuration_item, kind, revocable_until);
