-- A replay gives a delivery a fresh attempt budget: the attempts before attempt_base were spent
-- before it, and stay in the attempt log.
ALTER TABLE deliveries ADD COLUMN attempt_base BIGINT NOT NULL DEFAULT 0;

-- A delivery folded into a merged summary (a burst to one channel) names the delivery that
-- carried the summary.
ALTER TABLE deliveries ADD COLUMN merged_into TEXT;

-- What the receiver answered to an attempt that went through, cut short; a failure's answer is
-- in its error.
ALTER TABLE attempts ADD COLUMN answer TEXT;

-- The next free sending slot of each paced channel (epoch milliseconds), shared by every notify
-- replica so that together they keep the channel's pace.
CREATE TABLE channel_pace (
    channel   TEXT PRIMARY KEY,
    next_slot BIGINT NOT NULL
);

-- Addresses that unsubscribed from digests with the link in a digest e-mail.
CREATE TABLE digest_optouts (
    address TEXT PRIMARY KEY,
    at      BIGINT NOT NULL
);
