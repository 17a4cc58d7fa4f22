-- The outbox becomes a table of its own. A mark on the win row meant that clearing it, once for
-- every win published, rewrote the whole row (payload included) and, since the mark was in the
-- outbox index's condition, added an entry to each of the win's seven indexes: at saturation it
-- was PostgreSQL's second largest share of time and write-ahead log. Here a win waiting to be
-- published is one narrow row, inserted with the change and deleted once published.
CREATE TABLE outbox (
    win_id    TEXT PRIMARY KEY,
    status    TEXT NOT NULL,
    status_at BIGINT NOT NULL
);
-- The relay takes the oldest changes first; after an outage the outbox can hold many.
CREATE INDEX outbox_by_change ON outbox (status_at);
INSERT INTO outbox (win_id, status, status_at)
    SELECT id, status, COALESCE(status_at, created_at) FROM wins WHERE publish_pending = 1;
DROP INDEX wins_outbox;
ALTER TABLE wins DROP COLUMN publish_pending;
