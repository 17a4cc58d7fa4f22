-- One delivery per (announcement, route, channel): a route may name several channels. Existing rows
-- keep their ids; each was already the only delivery of its (announcement, route).
--
-- SQLite cannot drop a table constraint, so both tables are rebuilt with every row copied; the
-- attempts follow their deliveries so no foreign key ever points at nothing.
CREATE TABLE deliveries_new (
    id              TEXT PRIMARY KEY,
    announcement_id TEXT NOT NULL,
    route           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    payload         BLOB NOT NULL,
    UNIQUE (announcement_id, route, channel)
);
INSERT INTO deliveries_new (id, announcement_id, route, channel, status, attempts, next_attempt_at,
                            lease_until, last_error, created_at, delivered_at, payload)
SELECT id, announcement_id, route, channel, status, attempts, next_attempt_at,
       lease_until, last_error, created_at, delivered_at, payload
FROM deliveries;

CREATE TABLE attempts_new (
    delivery_id TEXT NOT NULL REFERENCES deliveries_new (id),
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO attempts_new (delivery_id, attempt, at, http_status, error, duration_ms)
SELECT delivery_id, attempt, at, http_status, error, duration_ms FROM attempts;

DROP TABLE attempts;
DROP TABLE deliveries;
-- Renaming also points attempts_new's foreign key at the renamed table.
ALTER TABLE deliveries_new RENAME TO deliveries;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
