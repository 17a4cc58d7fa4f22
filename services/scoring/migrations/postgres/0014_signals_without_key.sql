-- A signal needs no key of its own: only an event scored for the first time brings signals (the
-- events table's key, in the same transaction, keeps them from being kept twice), and a lookup
-- reads the signal it finds in the same statement. The key's index took an entry at a random
-- place for every incident and was read only by that lookup.
ALTER TABLE signals DROP CONSTRAINT signals_pkey;
ALTER TABLE signals ALTER COLUMN event_id SET NOT NULL;
