-- Times are epoch milliseconds (BIGINT), the same on PostgreSQL and SQLite.

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
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    payload         BYTEA NOT NULL,
    UNIQUE (announcement_id, route)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

-- Every attempt, for the record.
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    http_status BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
