-- Recent rejected deliveries (metadata only, never bodies), for operators diagnosing a webhook.
-- Times are epoch milliseconds.
CREATE TABLE rejections (
    id          BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    source      TEXT NOT NULL,
    status      BIGINT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    body_bytes  BIGINT,
    remote      TEXT
);
CREATE INDEX rejections_by_source ON rejections (source, id DESC);
