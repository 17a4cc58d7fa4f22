-- Recent rejected deliveries (metadata only, never bodies), for operators diagnosing a webhook.
-- Times are epoch milliseconds.
CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    body_bytes  INTEGER,
    remote      TEXT
);
CREATE INDEX rejections_by_source ON rejections (source, id DESC);
