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
    next_attempt_at TIMESTAMPTZ,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    payload         BYTEA NOT NULL,
    UNIQUE (announcement_id, route)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Every attempt, for the record.
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    http_status INTEGER,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
