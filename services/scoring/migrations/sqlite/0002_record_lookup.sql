-- `herald explain INC0050105`: wins and events looked up by the record they are about.
CREATE INDEX wins_by_record ON wins (record_number);
CREATE INDEX events_by_record ON events (record_number);
