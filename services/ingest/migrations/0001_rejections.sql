-- Recent rejected deliveries (metadata only, never bodies), for operators diagnosing a webhook.
CREATE TABLE rejections (
    id          BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    source      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    body_bytes  BIGINT,
    remote      TEXT
);
CREATE INDEX rejections_by_source ON rejections (source, id DESC);
