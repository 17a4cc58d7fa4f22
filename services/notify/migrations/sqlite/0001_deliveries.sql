-- Times are epoch milliseconds (INTEGER), the same on PostgreSQL and SQLite.

-- One delivery per (announcement, route): the unique key is what makes "never twice" hold when an
-- announcement is redelivered.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    announcement_id TEXT NOT NULL,
    route           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    -- pending: waiting for its next attempt; sending: claimed by a dispatcher until lease_until;
    -- delivered; failed (permanent error or out of attempts).
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    payload         BLOB NOT NULL,
    UNIQUE (announcement_id, route)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

-- Every attempt, for the record.
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
