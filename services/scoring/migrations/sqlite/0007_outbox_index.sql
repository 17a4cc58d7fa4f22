-- The outbox relay reads the oldest wins still to publish. An index on the 0/1 mark alone did not
-- serve it: PostgreSQL read every marked row and sorted them (115 ms a poll with 80,000 wins in the
-- benchmark). This one holds only the marked wins, in the order the relay takes them.
DROP INDEX wins_unpublished;
CREATE INDEX wins_outbox ON wins (status_at) WHERE publish_pending = 1;
