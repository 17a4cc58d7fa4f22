-- A signal needs no key of its own: only an event scored for the first time brings signals (the
-- events table's key, in the same transaction, keeps them from being kept twice), and a lookup
-- reads the signal it finds by its rowid. The key's index took an entry at a random place
-- of its b-tree for every incident (the page written, and written again at the checkpoint:
-- a fifth of what scoring wrote for a win in `herald up`) and was read only by that lookup.
-- SQLite cannot drop a primary key: the table is rebuilt without one.
CREATE TABLE signals_kept (
    event_id           TEXT NOT NULL,
    source             TEXT NOT NULL,
    kind               TEXT NOT NULL,
    record_number      TEXT NOT NULL,
    at                 INTEGER NOT NULL,
    business_service   TEXT,
    configuration_item TEXT
);
INSERT INTO signals_kept (event_id, source, kind, record_number, at, business_service, configuration_item)
    SELECT event_id, source, kind, record_number, at, business_service, configuration_item
    FROM signals ORDER BY rowid;
DROP TABLE signals;
ALTER TABLE signals_kept RENAME TO signals;
CREATE INDEX signals_by_record ON signals (source, record_number, at);
CREATE INDEX signals_by_service ON signals (business_service, at);
CREATE INDEX signals_by_ci ON signals (configuration_item, at);
